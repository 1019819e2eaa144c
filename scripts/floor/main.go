//go:build floor

// Command floor is the yardstick for the agent's own footprint: the least a
// protoactor-go program shaped like the agent can cost. Five actors (a root,
// three readers, an encoder); on every tick each reader reads one /proc file
// and the encoder turns the three readings into one JSON document, which it
// throws away. No network, no child processes, no logging: it prints nothing
// in steady state. scripts/footprint.sh runs it next to the agent and
// reports the agent's CPU per sample and RSS as ratios to it.
//
// The build tag keeps it out of the agent's package list (the layout test
// allows no new top-level package); build it static and stripped like the
// agent:
//
//	CGO_ENABLED=0 go build -tags floor -trimpath -ldflags "-s -w" -o floor ./scripts/floor
//	floor -interval 1s            # run until SIGTERM/SIGINT
//	floor -ticks 1                # one tick, then exit (exec -> first tick)
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

type (
	tick    struct{ n uint64 }
	reading struct {
		n    uint64
		file string
		body string
		err  string
	}
	encoded struct{ n uint64 }
)

// reader reads one /proc file per tick and sends it to the encoder.
type reader struct {
	path, name string
	encoder    *actor.PID
}

func (r *reader) Receive(ctx actor.Context) {
	if t, ok := ctx.Message().(*tick); ok {
		m := &reading{n: t.n, file: r.name}
		if b, err := os.ReadFile(r.path); err != nil {
			m.err = err.Error()
		} else {
			m.body = string(b)
		}
		ctx.Send(r.encoder, m)
	}
}

// encoder encodes one JSON document per tick once the three readings are in.
type encoder struct {
	got  map[string]string
	n    uint64
	done *actor.PID
}

func (e *encoder) Receive(ctx actor.Context) {
	m, ok := ctx.Message().(*reading)
	if !ok {
		return
	}
	if m.n != e.n {
		e.n, e.got = m.n, map[string]string{}
	}
	e.got[m.file] = m.body + m.err
	if len(e.got) < 3 {
		return
	}
	doc := struct {
		CollectedAt string            `json:"collected_at"`
		Data        map[string]string `json:"data"`
	}{time.Now().UTC().Format(time.RFC3339Nano), e.got}
	if err := json.NewEncoder(io.Discard).Encode(doc); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
	}
	ctx.Send(e.done, &encoded{n: m.n})
}

// root spawns the others and ticks them on a one-shot timer re-armed per
// tick, as the agent's collectors do.
type root struct {
	interval time.Duration
	proc     string
	readers  []*actor.PID
	n        uint64
	limit    uint64
	finished chan struct{}
}

func (r *root) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		enc := ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return &encoder{done: ctx.Self()} }))
		for _, f := range []string{"loadavg", "meminfo", "stat"} {
			rd := &reader{path: filepath.Join(r.proc, f), name: f, encoder: enc}
			r.readers = append(r.readers, ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return rd })))
		}
		ctx.Send(ctx.Self(), &tick{})
	case *tick:
		r.n++
		for _, pid := range r.readers {
			ctx.Send(pid, &tick{n: r.n})
		}
		self, sys := ctx.Self(), ctx.ActorSystem().Root
		time.AfterFunc(r.interval, func() { sys.Send(self, &tick{}) })
	case *encoded:
		if r.limit > 0 && m.n >= r.limit {
			close(r.finished)
		}
	}
}

func main() {
	interval := flag.Duration("interval", time.Second, "tick interval")
	proc := flag.String("proc", "/proc", "proc root to read loadavg, meminfo and stat from")
	ticks := flag.Uint64("ticks", 0, "exit after this many encoded ticks (0: run until SIGTERM)")
	flag.Parse()

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	quiet := slog.New(slog.DiscardHandler)
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
	finished := make(chan struct{})
	sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return &root{interval: *interval, proc: *proc, limit: *ticks, finished: finished}
	}))
	select {
	case <-sigs:
	case <-finished:
	}
	sys.Shutdown()
}
