package dump

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// LoggedSample is one samples.log entry read back (for replay): the payload
// exactly as it was pushed (compact JSON), its kind and when it was
// collected.
type LoggedSample struct {
	// Line is where the entry's header is in the file, for messages.
	Line        int
	Kind        string
	CollectedAt time.Time
	Payload     []byte
}

// ScanReport says what ScanSamples skipped.
type ScanReport struct {
	Samples int
	// Torn is set when the last entry was cut short (the file was being
	// written when it was copied, or the disk filled): skipped.
	Torn bool
	// Bad lists entries in the middle of the file that could not be read,
	// each as "line N: why"; they are skipped too.
	Bad []string
}

// maxEntry bounds one entry: the largest payload the agent pushes is a few
// MiB (thousands of guests); anything far beyond is not a sample.
const maxEntry = 64 << 20

// ScanSamples reads samples.log entries (the format AppendSample writes)
// from r in order and calls fn for each readable one. An error from fn
// stops the scan and is returned; a damaged entry never is.
func ScanSamples(r io.Reader, fn func(LoggedSample) error) (ScanReport, error) {
	var (
		rep     ScanReport
		cur     *LoggedSample
		body    bytes.Buffer
		lineNo  int
		tooLong bool
	)
	flush := func(last bool) error {
		if cur == nil {
			return nil
		}
		s, err := finish(*cur, body.Bytes(), tooLong)
		cur, tooLong = nil, false
		body.Reset()
		if err != nil {
			if last {
				rep.Torn = true
			} else {
				rep.Bad = append(rep.Bad, fmt.Sprintf("line %d: %v", s.Line, err))
			}
			return nil
		}
		rep.Samples++
		return fn(s)
	}
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, long, err := readLine(br, maxEntry)
		if long && cur != nil {
			tooLong = true
		}
		if len(line) > 0 {
			lineNo++
			if kind, ok := sampleHeader(line); ok {
				if ferr := flush(false); ferr != nil {
					return rep, ferr
				}
				cur = &LoggedSample{Line: lineNo, Kind: kind}
			} else if bytes.HasPrefix(line, []byte("===== ")) {
				// A header cut short: it still ends the entry before it.
				if ferr := flush(false); ferr != nil {
					return rep, ferr
				}
				if errors.Is(err, io.EOF) {
					rep.Torn = true
				} else {
					rep.Bad = append(rep.Bad, fmt.Sprintf("line %d: damaged entry header", lineNo))
				}
			} else if cur != nil {
				if body.Len()+len(line) > maxEntry {
					tooLong = true
				} else {
					body.Write(line)
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return rep, flush(true)
		}
		if err != nil {
			return rep, fmt.Errorf("read samples: %w", err)
		}
	}
}

// readLine reads one line, keeping at most limit bytes of it; the rest is
// read and dropped, and long says so: one line of a damaged or hostile file
// (no newline for gigabytes) must not take all memory.
func readLine(br *bufio.Reader, limit int) (line []byte, long bool, err error) {
	for {
		frag, err := br.ReadSlice('\n')
		if len(line)+len(frag) <= limit {
			line = append(line, frag...)
		} else {
			long = true
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return line, long, err
		}
	}
}

// IsSampleHeader reports whether line is a whole samples.log entry header,
// "===== <time> kind=<kind> =====": what a samples.log (or a set-aside
// file) starts with, and what replay checks before reading a file at all.
func IsSampleHeader(line []byte) bool {
	_, ok := sampleHeader(line)
	return ok
}

// sampleHeader recognises "===== <time> kind=<kind> =====".
func sampleHeader(line []byte) (string, bool) {
	s := string(bytes.TrimRight(line, "\r\n"))
	const open, close = "===== ", " ====="
	if len(s) < len(open)+len(close) || s[:len(open)] != open || s[len(s)-len(close):] != close {
		return "", false
	}
	_, kind, ok := bytes.Cut([]byte(s[len(open):len(s)-len(close)]), []byte(" kind="))
	if !ok || len(kind) == 0 || bytes.ContainsAny(kind, " \t") {
		return "", false
	}
	return string(kind), true
}

func finish(s LoggedSample, body []byte, tooLong bool) (LoggedSample, error) {
	if tooLong {
		return s, fmt.Errorf("entry larger than %d bytes", maxEntry)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, bytes.TrimSpace(body)); err != nil {
		return s, fmt.Errorf("payload is not whole JSON: %w", err)
	}
	var head struct {
		CollectedAt string `json:"collected_at"`
	}
	if err := json.Unmarshal(compact.Bytes(), &head); err != nil {
		return s, fmt.Errorf("payload is not a sample: %w", err)
	}
	at, err := time.Parse(time.RFC3339Nano, head.CollectedAt)
	if err != nil {
		return s, fmt.Errorf("collected_at %q: %w", clip(head.CollectedAt), err)
	}
	s.CollectedAt, s.Payload = at, compact.Bytes()
	return s, nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
