package delivery

import (
	"bytes"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/spool"
)

// BenchmarkSpooledMemory is the reporter's memory with the spool empty and
// with 100,000 samples of 4 kB spooled (about 400 MB on disk): heap in use
// after a GC, and the process's RSS (which includes the spool's memory map
// pages that were touched).
func BenchmarkSpooledMemory(b *testing.B) {
	for _, n := range []int{0, 100_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			l := &spool.Lazy{Dir: b.TempDir(), MaxBytes: 1 << 30, Retry: time.Minute}
			defer l.Close()
			sp, _, err := l.Get(time.Now())
			if err != nil {
				b.Fatal(err)
			}
			body := bytes.Repeat([]byte("x"), 4000)
			for i := 0; i < n/1000; i++ {
				batch := make([]spool.Record, 1000)
				for j := range batch {
					batch[j] = spool.Record{Kind: "fast", CollectedAt: base, Payload: body}
				}
				if _, _, err := sp.AppendBatch(batch); err != nil {
					b.Fatal(err)
				}
			}
			var stores []*Store
			for b.Loop() {
				q := &Queue{MaxItems: 2000, MaxBytes: 64 << 20}
				st := NewStore(q, NewDelivery(q, 64, time.Second), LazyOpener(l), discard)
				st.Refill(time.Now())
				stores = append(stores[:0], st)
			}
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
			b.ReportMetric(rssMiB(), "rss-MiB")
			runtime.KeepAlive(stores)
		})
	}
}

func rssMiB() float64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
