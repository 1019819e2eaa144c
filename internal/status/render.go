package status

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Render prints d for a person at a terminal: the session first (is it
// delivering?), then the backlog, then the cadences and sources.
func Render(w io.Writer, d Doc, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	p("agent\t%s, pid %d, up %s\n", d.Version, d.PID, ago(now, d.StartedAt))
	p("server\t%s\n", d.Server)
	p("session\t%s\n", session(d, now))
	if d.LastError != "" {
		p("last error\t%s\n", d.LastError)
	}
	p("queue\t%s\n", queue(d.Queue, now))
	p("delivery\t%s\n", counters(d.Queue))
	if d.Queue.Fallback && d.Queue.FallbackReason != "" {
		p("spool problem\t%s\n", oneLine(d.Queue.FallbackReason, 200))
	}
	for _, k := range d.Queue.Kept {
		p("damaged spool kept\t%s (salvage: proxmox-agent replay --spool <file>)\n", oneLine(k, 200))
	}
	if c := d.Config; c.Path != "" {
		p("config\t%s, loaded %s ago\n", c.Path, ago(now, c.LoadedAt))
	}
	if c := d.Config; c.ReloadError != "" {
		p("reload failed\t%s ago, running the config loaded before: %s\n", ago(now, c.ReloadErrorAt), oneLine(c.ReloadError, 200))
	}
	p("\n")
	p("cadence\tinterval\trounds\tskipped\tlast round\ttook\n")
	for _, c := range d.Cadences {
		p("%s\t%s\t%d\t%d\t%s\t%s\n", c.Kind, c.Interval, c.Rounds, c.Skipped, agoOrNever(now, c.LastRound), c.LastDuration.Round(time.Millisecond))
	}
	p("\n")
	p("source\tcadence\tlast ok\tlast error\n")
	for _, s := range d.Sources {
		errText := "-"
		if s.LastError != "" {
			errText = fmt.Sprintf("%s ago: %s", ago(now, s.LastErrorAt), oneLine(s.LastError, 80))
		}
		p("%s\t%s\t%s\t%s\n", s.Name, s.Cadence, agoOrNever(now, s.LastOK), errText)
	}
	return tw.Flush()
}

func session(d Doc, now time.Time) string {
	since := ""
	if !d.Since.IsZero() {
		since = " for " + ago(now, d.Since)
	}
	switch {
	case d.Joined:
		return "joined" + since
	case d.Connected:
		return "connected, not joined" + since
	default:
		return "disconnected" + since
	}
}

func queue(q Queue, now time.Time) string {
	where := "memory only"
	if q.Spool != "" {
		where = "spool " + q.Spool
		if q.Fallback {
			where += " (unusable: in memory until it works again)"
		}
	}
	oldest := ""
	if !q.Oldest.IsZero() {
		oldest = ", oldest " + ago(now, q.Oldest) + " old"
	}
	s := fmt.Sprintf("%d samples, %s%s; %s; dropped %d, poisoned %d", q.Depth, bytesText(q.Bytes), oldest, where, q.Dropped, q.Poisoned)
	if q.Corrupt > 0 {
		s += fmt.Sprintf(", corrupt %d (kept in the set-aside file)", q.Corrupt)
	}
	if q.Quarantined > 0 {
		s += fmt.Sprintf(", damaged spool files moved aside %d", q.Quarantined)
	}
	if q.Rewritten > 0 {
		s += fmt.Sprintf(", spool file rewritten %d (removed or replaced while running)", q.Rewritten)
	}
	switch {
	case q.SetAsideProblem != "":
		s += fmt.Sprintf("; set-aside file %s: %s", q.SetAside, q.SetAsideProblem)
	case q.SetAside != "":
		s += fmt.Sprintf("; set aside: %s in %s (send with proxmox-agent replay)", bytesText(q.SetAsideBytes), q.SetAside)
	}
	return s
}

// counters says what became of the samples pushed: an operator must see
// a server that refuses them.
func counters(q Queue) string {
	s := fmt.Sprintf("pushed %d, acked %d, refused %d", q.Pushed, q.Acked, q.Refused)
	if q.Refused > 0 {
		s += " (the server answered them with an error; not retried: see last error)"
	}
	return s
}

func ago(now, t time.Time) string {
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	if d < time.Minute {
		return d.Round(time.Second).String()
	}
	return d.Round(time.Minute).String()
}

func agoOrNever(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return ago(now, t) + " ago"
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// oneLine keeps a source's error on its row: the first line, cut.
func oneLine(s string, max int) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}
