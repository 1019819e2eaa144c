// Command phoenix-sink is a local stand-in for the monitor server: it speaks
// Phoenix Channels v2 on /socket/websocket and prints every metric push as
// one NDJSON line. Fault switches make it misbehave the ways real servers do.
//
//	phoenix-sink -listen 127.0.0.1:4000 -token dev-token
package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/sink"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:4000", "address to listen on (loopback only for tests and demos)")
	token := flag.String("token", "dev-token", "token the agent must present (403 otherwise)")
	out := flag.String("out", "-", "append received samples as NDJSON to this file (- = stdout)")
	var f sink.Faults
	flag.BoolVar(&f.NoReply, "no-reply", false, "never reply to metric pushes ({:noreply, socket})")
	flag.BoolVar(&f.ErrorReply, "error-reply", false, "reply to metric pushes with status error")
	flag.BoolVar(&f.RefuseJoins, "refuse-joins", false, "refuse every join")
	flag.DurationVar(&f.ReplyDelay, "reply-delay", 0, "delay each metric reply")
	flag.IntVar(&f.DropEvery, "drop-every", 0, "drop the TCP connection after every N frames")
	flag.IntVar(&f.CloseEvery, "close-every", 0, "close with -close-code after every N frames")
	flag.IntVar(&f.CloseCode, "close-code", 1001, "close code for -close-every (1000, 1001, 1012, ...)")
	flag.DurationVar(&f.IdleTimeout, "idle-timeout", 60*time.Second, "drop sockets idle this long (Cowboy: 60s)")
	flag.StringVar(&f.PoisonContains, "poison", "", "crash the channel (phx_error) on a metric push whose payload contains this text")
	flag.BoolVar(&f.PoisonDrops, "poison-drops", false, "with -poison: cut the TCP connection instead of phx_error")
	flag.IntVar(&f.GarbageRefAfter, "garbage-ref-after", 0, "after N frames on each connection, send a frame whose ref is a huge JSON array")
	flag.IntVar(&f.GarbageRefBytes, "garbage-ref-bytes", 4<<20, "size of the -garbage-ref-after frame")
	flag.IntVar(&f.AckFirst, "ack-first", 0, "reply to the first N metric pushes only, then stop replying (0: reply to all)")
	flag.BoolVar(&f.Flood, "flood", false, "after each join, send junk frames as fast as the client reads them")
	flag.BoolVar(&f.NoUpgrade, "no-upgrade", false, "accept TCP connections but never answer the upgrade request")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	var w io.Writer = os.Stdout
	if *out != "-" {
		file, err := os.OpenFile(*out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "phoenix-sink:", err)
			os.Exit(1)
		}
		defer file.Close()
		w = file
	}
	s := sink.New(*token)
	s.Faults, s.Log, s.Out = f, log, w
	if err := s.Start(*listen); err != nil {
		fmt.Fprintln(os.Stderr, "phoenix-sink:", err)
		os.Exit(1)
	}
	log.Info("phoenix-sink listening", "url", s.URL())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	<-sigs
	s.Stop()
	log.Info("phoenix-sink stopped", "samples", len(s.Samples()), "connects", s.Connects.Load(), "refused", s.Refused.Load())
}
