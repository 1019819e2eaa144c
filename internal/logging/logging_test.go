package logging

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
)

func TestNewRejectsUnknownSettings(t *testing.T) {
	if _, err := New(&bytes.Buffer{}, "xml", "info"); err == nil || !strings.Contains(err.Error(), "xml") {
		t.Errorf("format: %v", err)
	}
	if _, err := New(&bytes.Buffer{}, "text", "loud"); err == nil || !strings.Contains(err.Error(), "loud") {
		t.Errorf("level: %v", err)
	}
}

// The library's Info chatter (the "actor system started" banner) goes through
// our handler, demoted to Debug; its warnings stay warnings.
func TestActorLibraryLogsAreRoutedAndDemoted(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, "json", "info")
	if err != nil {
		t.Fatal(err)
	}
	sys := actor.NewActorSystem(ActorSystemOption(log))
	sys.Shutdown()
	if strings.Contains(buf.String(), "actor system started") {
		t.Fatalf("library Info shown at level info: %s", buf.String())
	}
	buf.Reset()
	debug, _ := New(&buf, "json", "debug")
	sys = actor.NewActorSystem(ActorSystemOption(debug))
	sys.Shutdown()
	if !strings.Contains(buf.String(), `"lib":"protoactor"`) || !strings.Contains(buf.String(), "actor system started") {
		t.Fatalf("library log not routed: %s", buf.String())
	}
	buf.Reset()
	slog.New(demote{log.Handler()}).Warn("w")
	if !strings.Contains(buf.String(), `"level":"WARN"`) {
		t.Fatalf("warning demoted: %s", buf.String())
	}
}
