package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/internal/logging"
	"github.com/proxmox-agent/proxmox-agent/supervisor"
)

// window selects samples by collected_at: [since, until).
type window struct{ since, until time.Time }

func (w window) has(t time.Time) bool {
	return (w.since.IsZero() || !t.Before(w.since)) && (w.until.IsZero() || t.Before(w.until))
}

func parseWindow(f flags) (window, error) {
	var w window
	var err error
	if f.since != "" {
		if w.since, err = time.Parse(time.RFC3339Nano, f.since); err != nil {
			return w, fmt.Errorf("--since %q: want RFC 3339, e.g. 2026-11-29T10:00:00Z", f.since)
		}
	}
	if f.until != "" {
		if w.until, err = time.Parse(time.RFC3339Nano, f.until); err != nil {
			return w, fmt.Errorf("--until %q: want RFC 3339, e.g. 2026-11-29T12:00:00Z", f.until)
		}
	}
	return w, nil
}

// pushable are the kinds replay sends: the agent's three cadences, pushed
// as metric:fast|medium|slow. The kind comes from the file's entry header,
// which anyone who can edit the file writes: any other kind would go out as
// an event the agent never sends (a forged phx_join, phx_leave…).
var pushable = map[string]bool{"fast": true, "medium": true, "slow": true}

// selection is what replay takes from the files: samples of a pushable
// kind in the window. Other kinds are counted by (escaped) kind.
type selection struct {
	w       window
	skipped map[string]int
}

func (sel *selection) take(s dump.LoggedSample) bool {
	if !sel.w.has(s.CollectedAt) {
		return false
	}
	if !pushable[s.Kind] {
		if sel.skipped != nil {
			sel.skipped[escape(s.Kind)]++
		}
		return false
	}
	return true
}

// noteSkipped reports the entries of other kinds, once, at the end.
func (sel *selection) noteSkipped(note io.Writer) {
	if len(sel.skipped) == 0 {
		return
	}
	kinds := make([]string, 0, len(sel.skipped))
	n := 0
	for k, c := range sel.skipped {
		kinds = append(kinds, fmt.Sprintf("kind=%s (%d)", k, c))
		n += c
	}
	sort.Strings(kinds)
	fmt.Fprintf(note, "note: skipped %d entries that are not samples (only kind=fast|medium|slow are pushed): %s\n", n, strings.Join(kinds, ", "))
}

// headerPeek bounds the look for the first line: a samples.log header is
// about 50 bytes.
const headerPeek = 512

// openSamples opens a file named on the command line and checks that it is
// a samples.log: a regular file whose first line is an entry header. A
// config, a commands.log or a binary is refused before anything is read
// from it, rather than "replayed" as zero samples or hundreds of damaged
// entries. An empty file is a samples.log just rotated.
func openSamples(name string) (*os.File, *bufio.Reader, error) {
	fh, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	// A FIFO would block, /dev/zero never end: only regular files
	// (or their symlinks) are dumps.
	if st, err := fh.Stat(); err != nil || !st.Mode().IsRegular() {
		fh.Close()
		return nil, nil, fmt.Errorf("%s: not a regular file (a samples.log from the dump directory)", escape(name))
	}
	br := bufio.NewReaderSize(fh, 64<<10)
	head, _ := br.Peek(headerPeek)
	i := bytes.IndexByte(head, '\n')
	switch {
	case len(head) == 0:
	case i >= 0 && dump.IsSampleHeader(head[:i+1]):
	case i < 0 && len(head) < headerPeek && bytes.HasPrefix(head, []byte("===== ")):
		// One entry header cut short: ScanSamples reports it torn.
	default:
		fh.Close()
		return nil, nil, fmt.Errorf("%s: not a samples.log (it does not start with a \"===== <time> kind=<kind> =====\" entry header)", escape(name))
	}
	return fh, br, nil
}

// scanner calls fn for every sample of a source that sel selects, in
// order, with where it is ("file:line"), and tells note what it skipped
// (nil: say nothing, a second pass).
type scanner func(sel *selection, note io.Writer, fn func(where string, s dump.LoggedSample) error) error

// fileScanner reads samples.log files (or set-aside files).
func fileScanner(files []string) scanner {
	return func(sel *selection, note io.Writer, fn func(string, dump.LoggedSample) error) error {
		return scanFiles(files, sel, note, fn)
	}
}

// scanFiles calls fn for every selected sample of files, in order, and
// reports what it skipped to note (torn last entries, damaged ones).
func scanFiles(files []string, sel *selection, note io.Writer, fn func(string, dump.LoggedSample) error) error {
	for _, name := range files {
		fh, br, err := openSamples(name)
		if err != nil {
			return err
		}
		where := escape(name)
		rep, err := dump.ScanSamples(br, func(s dump.LoggedSample) error {
			if !sel.take(s) {
				return nil
			}
			return fn(fmt.Sprintf("%s:%d", where, s.Line), s)
		})
		fh.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if note != nil {
			if rep.Torn {
				fmt.Fprintf(note, "note: %s: the last entry is cut short (the file was being written): skipped\n", where)
			}
			for _, b := range rep.Bad {
				fmt.Fprintf(note, "note: %s: %s: skipped\n", where, escape(b))
			}
		}
	}
	return nil
}

// errEnough ends the second pass at the first pass's count.
var errEnough = errors.New("all counted samples sent")

// replayCmd pushes the samples of dump files (or of a damaged spool file,
// --spool) to the configured server.
func replayCmd(f flags, files []string, stdout, stderr io.Writer) int {
	src, code := replaySource(f, files, stderr)
	if src == nil {
		return code
	}
	w, err := parseWindow(f)
	if err != nil {
		fmt.Fprintln(stderr, "proxmox-agent replay:", err)
		return 2
	}
	sel := &selection{w: w, skipped: map[string]int{}}
	defer sel.noteSkipped(stderr)
	total := 0
	err = src(sel, stderr, func(where string, s dump.LoggedSample) error {
		total++
		if f.dryRun {
			fmt.Fprintf(stdout, "%s  %-6s  %7d bytes  %s\n", dump.Timestamp(s.CollectedAt), escape(s.Kind), len(s.Payload), where)
		}
		return nil
	})
	if err != nil {
		fmt.Fprintln(stderr, "proxmox-agent replay:", err)
		return 1
	}
	if f.dryRun {
		fmt.Fprintf(stdout, "%d samples would be pushed\n", total)
		return 0
	}
	if total == 0 {
		fmt.Fprintln(stdout, "no sample selected: nothing to push")
		return 0
	}
	return push(f, src, w, total, stdout, stderr)
}

// replaySource picks what replay reads: the files named, or the spool file
// of --spool; nil and an exit code on a usage error.
func replaySource(f flags, files []string, stderr io.Writer) (scanner, int) {
	if f.spool != "" {
		if len(files) > 0 {
			fmt.Fprintln(stderr, "proxmox-agent replay: --spool reads one spool file; replay samples.log files in a run of their own")
			return nil, 2
		}
		src, err := spoolScanner(f.spool)
		if err != nil {
			fmt.Fprintln(stderr, "proxmox-agent replay:", err)
			return nil, 1
		}
		return src, 0
	}
	if len(files) == 0 {
		fmt.Fprintln(stderr, "proxmox-agent replay: name at least one samples.log or set-aside.log (e.g. /var/log/proxmox-agent/samples.log.1), or --spool FILE")
		return nil, 2
	}
	return fileScanner(files), 0
}

func push(f flags, src scanner, w window, total int, stdout, stderr io.Writer) int {
	cfg, log, err := loadConfig(f, stderr)
	if err != nil {
		log.Error("cannot load config", "err", err)
		return 1
	}
	sum, err := supervisor.Replay(supervisor.ReplayOptions{
		Config: cfg, Log: log, Total: total,
		Samples: func(yield func(dump.LoggedSample) error) error {
			// Exactly what the first pass counted: a file still being
			// written (the live samples.log) may have grown since.
			n := 0
			err := src(&selection{w: w}, nil, func(_ string, s dump.LoggedSample) error {
				if n == total {
					return errEnough
				}
				n++
				return yield(s)
			})
			if errors.Is(err, errEnough) {
				return nil
			}
			return err
		},
		Progress:      progress(stderr, total),
		SystemOptions: []actor.ConfigOption{logging.ActorSystemOption(log)},
	})
	rate := float64(sum.Delivered) / sum.Elapsed.Seconds()
	fmt.Fprintf(stdout, "replayed %d of %d samples to %s in %s (%.0f/s); refused %d, set aside %d, lost %d, pushes %d\n",
		sum.Delivered, sum.Total, cfg.RedactedURL(), sum.Elapsed.Round(time.Millisecond), rate, sum.Refused, sum.Poisoned, sum.Lost, sum.Pushes)
	if err != nil {
		fmt.Fprintln(stderr, "proxmox-agent replay:", err)
		return 1
	}
	if sum.Delivered != sum.Total {
		return 1
	}
	return 0
}

// progress returns a progress line writer when w is a terminal (count,
// total, rate, redrawn in place), else nil: a log file gets the summary.
func progress(w io.Writer, total int) func(int) {
	fh, ok := w.(*os.File)
	if !ok {
		return nil
	}
	if _, err := unix.IoctlGetTermios(int(fh.Fd()), unix.TCGETS); err != nil {
		return nil
	}
	start, last := time.Now(), time.Time{}
	return func(done int) {
		if time.Since(last) < 200*time.Millisecond && done != total {
			return
		}
		last = time.Now()
		fmt.Fprintf(fh, "\r%d/%d delivered  %.0f/s ", done, total, float64(done)/time.Since(start).Seconds())
		if done == total {
			fmt.Fprintln(fh)
		}
	}
}
