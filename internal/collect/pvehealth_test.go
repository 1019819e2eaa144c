package collect

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxmox-agent/proxmox-agent/config"
	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/internal/parse/pve"
	"github.com/proxmox-agent/proxmox-agent/internal/payload"
	"github.com/proxmox-agent/proxmox-agent/internal/runner"
	"github.com/proxmox-agent/proxmox-agent/internal/testkit"
	"github.com/proxmox-agent/proxmox-agent/messages"
)

// The Proxmox health fixture host: see testdata/pve-health/README.md.
const (
	healthTree = "../../testdata/pve-health"
	healthEtc  = healthTree + "/etc-pve"
)

// healthT0 is the fixture host's "now" (2025-10-15T03:46:40Z): the HA
// status was written at it, the last backup ran an hour and a half before.
var healthT0 = time.Unix(1760500000, 0).UTC()

// healthConfig points every Proxmox path at the fixture host, with the
// apt lists' mtimes set (git keeps none): the newest an hour before T0.
func healthConfig(t testing.TB) *config.Config {
	t.Helper()
	cfg := testConfig(t)
	cfg.PVE.EtcDir, cfg.PVE.LibDir, cfg.PVE.LogDir = healthEtc, healthTree+"/lib-pve-manager", healthTree+"/log-pve"
	cfg.PVE.AptListsDir, cfg.PVE.SubscriptionFile = healthTree+"/apt-lists", healthTree+"/subscription"
	setListTimes(t)
	return cfg
}

func setListTimes(t testing.TB) {
	t.Helper()
	for name, age := range map[string]time.Duration{
		"deb.debian.org_debian_dists_trixie_InRelease":           3 * time.Hour,
		"download.proxmox.com_debian_pve_dists_trixie_InRelease": time.Hour,
		"lock": 0, // apt's lock file: newer, and not a list
	} {
		at := healthT0.Add(-age)
		if err := os.Chtimes(filepath.Join(healthTree, "apt-lists", name), at, at); err != nil {
			t.Fatal(err)
		}
	}
}

// healthRound runs one slow round of the Proxmox health sources (and
// cluster) on cfg with the clock at T0 and the host's zone UTC (the
// fixture's task logs are in UTC), and returns the payload.
func healthRound(t *testing.T, cfg *config.Config, run Runner, env *Env) *messages.Sample {
	t.Helper()
	for _, off := range []string{"storage", "disks", "node"} {
		cfg.Sources[off] = false // pvesh and smartctl: covered by slow.json
	}
	fs := FS{Root: "../../testdata/proc"}
	if env != nil {
		fs.Dump = env.Dump
	}
	s := CollectOnce("slow", buildAt("slow", cfg, run, fs, env, func() time.Time { return healthT0 }, time.UTC), slog.New(slog.DiscardHandler))
	s.CollectedAt = healthT0
	return s
}

// The fixture host (two-node cluster with HA, replication, two backup
// jobs, a failed guest backup, uncovered guests, three certificates,
// pending updates, a link down) gives this slow payload, byte for byte.
func TestHealthGolden(t *testing.T) {
	cfg := healthConfig(t)
	cfg.Sources = config.Sources{}
	s := healthRound(t, cfg, &fakeRun{}, nil)
	b, err := payload.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "slow-pve-health.json", payload.Indent(b))
	if len(s.Errors) != 0 {
		t.Errorf("errors: %v", s.Errors)
	}
}

// healthCopy copies the fixture host to a temporary directory and returns
// a config pointing at the copy, for tests that break files.
func healthCopy(t *testing.T) (*config.Config, string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(healthTree)); err != nil {
		t.Fatal(err)
	}
	cfg := healthConfig(t)
	cfg.PVE.EtcDir, cfg.PVE.LibDir, cfg.PVE.LogDir = dir+"/etc-pve", dir+"/lib-pve-manager", dir+"/log-pve"
	cfg.PVE.AptListsDir, cfg.PVE.SubscriptionFile = dir+"/apt-lists", dir+"/subscription"
	cfg.Sources = config.Sources{}
	return cfg, dir
}

// Per source: a host where it does not apply leaves it out of the payload
// (no data, no error entry), and a file that is there but broken is an
// error entry naming the file, for that source only.
func TestHealthAbsentVersusFailed(t *testing.T) {
	standalone := []byte("{\n\"nodename\": \"pve1\",\n\"version\": 3\n}\n")
	cases := []struct {
		source      string
		absent      func(dir string) error
		broken      func(dir string) error
		brokenError string
	}{
		{"backups", rm("etc-pve/.vmlist"), write("lib-pve-manager/jobs/vzdump-backup-3a9f1c2e-5d7b.json", "{\"state\":"),
			"lib-pve-manager/jobs/vzdump-backup-3a9f1c2e-5d7b.json: job state: want a JSON object"},
		{"replication", rm("etc-pve/replication.cfg"), write("lib-pve-manager/pve-replication-state.json", "[]"),
			"lib-pve-manager/pve-replication-state.json: replication state: want a JSON object"},
		{"ha", rmAll("etc-pve/ha"), write("etc-pve/ha/manager_status", "ipcc_send_rec failed"),
			"etc-pve/ha/manager_status: manager_status: want a JSON object"},
		{"certificates", rmEach("etc-pve/pve-root-ca.pem", "etc-pve/nodes/pve1/pve-ssl.pem", "etc-pve/nodes/pve1/pveproxy-ssl.pem"),
			write("etc-pve/nodes/pve1/pveproxy-ssl.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
			"etc-pve/nodes/pve1/pveproxy-ssl.pem: certificate: x509: malformed certificate"},
		{"subscription", rm("subscription"), write("subscription", "pve1c-0123456789\nxx\n%%%\n"),
			"subscription: subscription: data is not base64"},
		{"updates", rm("lib-pve-manager/pkgupdates"), write("lib-pve-manager/pkgupdates", "[{\"Package\":"),
			"lib-pve-manager/pkgupdates: pkgupdates: want a JSON array"},
		{"corosync", write("etc-pve/.members", string(standalone)), nil, "corosync-cfgtool -s: exit 1"},
	}
	for _, c := range cases {
		t.Run(c.source, func(t *testing.T) {
			cfg, dir := healthCopy(t)
			if err := c.absent(dir); err != nil {
				t.Fatal(err)
			}
			run := &fakeRun{}
			s := healthRound(t, cfg, run, nil)
			if _, ok := s.Data[c.source]; ok {
				t.Errorf("absent: %s in data", c.source)
			}
			if e, ok := s.Errors[c.source]; ok {
				t.Errorf("absent: %s in errors: %s", c.source, e)
			}
			if c.source == "corosync" && strings.Contains(strings.Join(run.calls, "\n"), "corosync-cfgtool") {
				t.Error("corosync-cfgtool ran on a standalone node")
			}

			cfg, dir = healthCopy(t)
			run = &fakeRun{}
			if c.broken != nil {
				if err := c.broken(dir); err != nil {
					t.Fatal(err)
				}
			} else {
				run.fail = map[string]bool{"corosync-cfgtool": true}
			}
			s = healthRound(t, cfg, run, nil)
			if e := s.Errors[c.source]; !strings.Contains(e, c.brokenError) {
				t.Errorf("broken: error %q, want it to contain %q", e, c.brokenError)
			}
			if len(s.Errors) != 1 {
				t.Errorf("broken: errors beyond %s: %v", c.source, s.Errors)
			}
			if len(s.Data) != 7 {
				t.Errorf("broken: %d sources in data, want the 7 others", len(s.Data))
			}
		})
	}
}

func rm(name string) func(string) error {
	return func(dir string) error { return os.Remove(filepath.Join(dir, name)) }
}

func rmAll(name string) func(string) error {
	return func(dir string) error { return os.RemoveAll(filepath.Join(dir, name)) }
}

func rmEach(names ...string) func(string) error {
	return func(dir string) error {
		for _, n := range names {
			if err := os.Remove(filepath.Join(dir, n)); err != nil {
				return err
			}
		}
		return nil
	}
}

func write(name, body string) func(string) error {
	return func(dir string) error { return os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644) }
}

// A FIFO under /etc/pve (a read that blocks, as a stuck pmxcfs's does) and
// a FIFO where the task index belongs: the slow round ends on time, the
// blocked source and the backups source report errors, the rest report
// data.
func TestHealthStuckReadRoundOnTime(t *testing.T) {
	cfg, dir := healthCopy(t)
	cfg.Timeouts.PmxcfsSeconds = 1
	stuck, index := filepath.Join(dir, "etc-pve/ha/manager_status"), filepath.Join(dir, "log-pve/tasks/index")
	for _, p := range []string{stuck, index} {
		os.Remove(p)
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := &Env{Config: cfg, Stats: NewStats()}
	t.Cleanup(func() {
		// A writer's open completes the blocked reader's open, then EOF.
		if f, err := os.OpenFile(stuck, os.O_WRONLY, 0); err == nil {
			f.Close()
		}
		deadline := time.Now().Add(10 * time.Second)
		for env.Files().Outstanding() > 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond) // polling for the reader to exit, not synchronising the test
		}
	})
	start := time.Now()
	s := healthRound(t, cfg, &fakeRun{}, env)
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("round took %s with a 1s read timeout", took)
	}
	if e := s.Errors["ha"]; e != "read "+stuck+": timed out after 1s" {
		t.Errorf("ha: %q", e)
	}
	if e := s.Errors["backups"]; !strings.Contains(e, index+": not a regular file") {
		t.Errorf("backups: %q", e)
	}
	if len(s.Data) != 6 {
		t.Errorf("%d sources with data, want 6: %v", len(s.Data), s.Errors)
	}
	if env.Files().Stuck() != 1 {
		t.Errorf("stuck reads %d, want 1", env.Files().Stuck())
	}
}

// Readers of a file whose read is under way share it: one open, one
// result for all, none of them told "still stuck".
func TestSlowFSJoinsAReadInFlight(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), ".members")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	s := &SlowFS{}
	type res struct {
		b   []byte
		err error
	}
	out := make(chan res, 3)
	for range 3 {
		go func() {
			b, err := s.Read(context.Background(), 10*time.Second, fifo)
			out <- res{b, err}
		}()
	}
	// Wait until the three readers are in: one reading, two joined.
	testkit.Eventually(t, 20*time.Second, "two readers joined the read in flight", func() bool { return joined(s, fifo) >= 2 })
	f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("members"))
	f.Close()
	for range 3 {
		if r := <-out; r.err != nil || string(r.b) != "members" {
			t.Errorf("%q %v", r.b, r.err)
		}
	}
	if s.Outstanding() != 0 {
		t.Errorf("%d reads outstanding", s.Outstanding())
	}
}

// joined is how many readers wait on path's read in flight besides its
// starter (test hook: the count of waiters is not otherwise visible).
func joined(s *SlowFS, path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.calls[path]; c != nil {
		return c.waiters
	}
	return 0
}

// The subscription key, server id and checksum, and a key pasted into a
// certificate file, reach neither the payload nor the dump.
func TestHealthSecretsStayOnTheHost(t *testing.T) {
	cfg, dir := healthCopy(t)
	key := "-----BEGIN PRIVATE KEY-----\nU0VDUkVUS0VZ\n-----END PRIVATE KEY-----\n"
	pem, _ := os.ReadFile(filepath.Join(dir, "etc-pve/nodes/pve1/pveproxy-ssl.pem"))
	os.WriteFile(filepath.Join(dir, "etc-pve/nodes/pve1/pveproxy-ssl.pem"), append([]byte(key), pem...), 0o644)
	rec := &recorder{}
	env := &Env{Config: cfg, Dump: rec.handle(), Stats: NewStats()}
	s := healthRound(t, cfg, &fakeRun{}, env)
	b, _ := payload.Encode(s)
	var dumped strings.Builder
	for _, r := range rec.recs {
		dumped.Write(dump.AppendCommand(nil, r))
	}
	if !strings.Contains(dumped.String(), "$ cat "+dir+"/subscription") || !strings.Contains(dumped.String(), "not recorded") {
		t.Fatalf("no redacted subscription entry in the dump:\n%s", dumped.String())
	}
	for _, secret := range []string{"0123456789", "Q8CmI8JDOUYDpOqiNi6VEQ", "eyJzdGF0dXMi", "U0VDUkVUS0VZ"} {
		if strings.Contains(string(b), secret) || strings.Contains(dumped.String(), secret) {
			t.Errorf("%q leaked", secret)
		}
	}
	if !strings.Contains(dumped.String(), "BEGIN CERTIFICATE") {
		t.Error("the certificate itself should be in the dump")
	}
}

// The guests source on the fixture host: onboot, HA, snapshot count and
// the oldest snapshot's age from the configs and ha/resources.cfg.
func TestGuestsHealthFields(t *testing.T) {
	cfg := healthConfig(t)
	g := &Guests{Run: &fakeRun{}, Pvesh: "pvesh", Node: "pve1", Timeout: time.Second, EtcDir: cfg.PVE.EtcDir,
		Files: &SlowFS{}, ReadTimeout: time.Second, Now: func() time.Time { return healthT0 }}
	out, err := g.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint64]pve.GuestHealth{}
	for _, gu := range out.([]pve.Guest) {
		got[gu.VMID.V] = gu.GuestHealth
	}
	u, i := func(v uint64) *uint64 { return &v }, func(v int64) *int64 { return &v }
	want := map[uint64]pve.GuestHealth{
		110: {OnBoot: pve.Bool(true), HAManaged: pve.Bool(true), Snapshots: u(2), OldestSnapshotSeconds: i(1760500000 - 1759290400)},
		111: {OnBoot: pve.Bool(false), HAManaged: pve.Bool(false), Snapshots: u(0)}, // [PENDING] is no snapshot
		112: {OnBoot: pve.Bool(true), HAManaged: pve.Bool(true), Snapshots: u(0)},
		113: {OnBoot: pve.Bool(false), HAManaged: pve.Bool(false), Snapshots: u(0)},
	}
	if !reflect.DeepEqual(got, want) {
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want)
		t.Errorf("got  %s\nwant %s", gj, wj)
	}
}

// ReadTail keeps whole lines from the end of a file longer than its cap,
// all of a shorter one, and refuses what is not a regular file at once.
func TestSlowFSReadTail(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "index")
	os.WriteFile(p, []byte("first line\nsecond\nthird\n"), 0o644)
	s := &SlowFS{}
	for max, want := range map[int]string{100: "first line\nsecond\nthird\n", 13: "third\n", 14: "second\nthird\n", 3: ""} {
		if b, err := s.ReadTail(context.Background(), time.Second, p, max); err != nil || string(b) != want {
			t.Errorf("max %d: %q %v", max, b, err)
		}
	}
	fifo := filepath.Join(dir, "fifo")
	syscall.Mkfifo(fifo, 0o600)
	os.Symlink("/dev/zero", filepath.Join(dir, "zero"))
	for _, name := range []string{"fifo", "zero", "."} {
		start := time.Now()
		_, err := s.ReadTail(context.Background(), 5*time.Second, filepath.Join(dir, name), 100)
		if err == nil || !strings.Contains(err.Error(), "not a regular file") || time.Since(start) > time.Second {
			t.Errorf("%s: %v after %s", name, err, time.Since(start))
		}
	}
	if _, err := s.ReadTail(context.Background(), time.Second, filepath.Join(dir, "none"), 100); !isNotExist(err) {
		t.Errorf("missing: %v", err)
	}
}

// Hostile names in the files: a job id or a UPID that would lead outside
// the jobs and task directories is never opened.
func TestBackupsHostileNames(t *testing.T) {
	cfg, dir := healthCopy(t)
	os.WriteFile(filepath.Join(dir, "etc-pve/jobs.cfg"), []byte("vzdump: ../../../../etc/x\n\tvmid 110\n"), 0o644)
	f, _ := os.OpenFile(filepath.Join(dir, "log-pve/tasks/index"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("UPID:pve1:00002155:0000A6A9:68FF5EB0:vzdump:110/../../../x:root@pam: 68FF5FB9 OK\n")
	f.Close()
	rec := &recorder{}
	env := &Env{Config: cfg, Dump: rec.handle(), Stats: NewStats()}
	s := healthRound(t, cfg, &fakeRun{}, env)
	if _, ok := s.Data["backups"]; !ok {
		t.Fatalf("backups: %v", s.Errors)
	}
	for _, l := range rec.lines() {
		if strings.Contains(l, "..") {
			t.Errorf("opened %s", l)
		}
	}
}

// A CA valid to 9999 (some are) is 2,912,520 days away, not the 106,751
// a saturated time.Duration would say; an expired one is negative.
func TestCertificatesDaysLeft(t *testing.T) {
	cfg, dir := healthCopy(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	mk := func(name string, notAfter time.Time) {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: notAfter}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	}
	mk("etc-pve/pve-root-ca.pem", time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC))
	mk("etc-pve/nodes/pve1/pveproxy-ssl.pem", healthT0.Add(-36*time.Hour))
	c := &Certificates{EtcDir: cfg.PVE.EtcDir, Node: "pve1", Files: &SlowFS{}, Timeout: time.Second, Now: func() time.Time { return healthT0 }}
	out, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	certs := out.([]CertificateData)
	if certs[0].DaysLeft != 2912520 || certs[0].NotAfter != "9999-12-31T23:59:59.000Z" || certs[2].DaysLeft != -2 || !certs[2].InUse {
		t.Errorf("%+v", certs)
	}
}

// count is the true number; the list stops at UpdatesListMax. Lists that
// cannot be read leave the age null, not the source failed.
func TestUpdatesCapAndListsAge(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("[")
	for i := range 150 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"Package":"p%03d","Version":"2","OldVersion":"1","Origin":"Debian"}`, i)
	}
	b.WriteString("]")
	os.WriteFile(filepath.Join(dir, "pkgupdates"), []byte(b.String()), 0o644)
	u := &Updates{LibDir: dir, ListsDir: filepath.Join(dir, "no-lists"), Files: &SlowFS{}, Timeout: time.Second, Now: func() time.Time { return healthT0 }}
	out, err := u.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	d := out.(UpdatesData)
	if d.Count != 150 || len(d.Packages) != UpdatesListMax || d.Packages[99].Name != "p099" || d.ListsAgeSeconds != nil {
		t.Errorf("count %d, %d listed, age %v", d.Count, len(d.Packages), d.ListsAgeSeconds)
	}
}

// A tail read goes into the dump as its size and its last few KiB only: a
// slow round reads up to 8 MiB of index and 24 logs of 2 MiB, and copying
// all of it into commands.log every round buried everything else.
func TestSlowFSReadTailDumpsOnlyItsEnd(t *testing.T) {
	dir := t.TempDir()
	var body strings.Builder
	for i := 0; body.Len() < 100000; i++ {
		fmt.Fprintf(&body, "INFO: line %06d of a long vzdump log\n", i)
	}
	cases := []struct {
		name, content string
		max           int
		shown         string // what the entry's header says after size=
	}{
		{"long log", body.String(), 1 << 20, fmt.Sprintf("size=%d shown=last ", body.Len())},
		{"cut at the cap", body.String(), 50000, "shown=last "},
		{"short file whole", "TASK OK\n", 1 << 20, "size=8\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-"))
			os.WriteFile(p, []byte(c.content), 0o644)
			rec := &recorder{}
			s := &SlowFS{Dump: rec.handle()}
			b, err := s.ReadTail(context.Background(), time.Second, p, c.max)
			if err != nil || len(rec.recs) != 1 {
				t.Fatalf("%v, %d entries", err, len(rec.recs))
			}
			r := rec.recs[0]
			if len(r.Stdout) > DumpTailBytes {
				t.Errorf("dump holds %d bytes of %d read", len(r.Stdout), len(b))
			}
			if !bytes.HasSuffix(b, r.Stdout) || (len(b) > DumpTailBytes && r.Stdout[0] == '\n') {
				t.Errorf("dump is not the end of what was read: %q", r.Stdout[:min(40, len(r.Stdout))])
			}
			if e := string(dump.AppendCommand(nil, r)); !strings.Contains(e, c.shown) {
				t.Errorf("entry does not say %q:\n%.300s", c.shown, e)
			}
		})
	}
}

// corosync-cfgtool ships with corosync on every clustered PVE node, so on a
// cluster node its absence is a broken install: an error entry, and not the
// "not installed" error the collector logs once at info as "not present on
// this host" (runner.NotFound), which would contradict the entry. A
// standalone node never runs it: absent, no entry.
func TestCorosyncCfgtoolMissing(t *testing.T) {
	standalone := []byte("{\n\"nodename\": \"pve1\",\n\"version\": 3\n}\n")
	cases := []struct {
		name    string
		members []byte // nil: the fixture's cluster
		absent  bool
	}{
		{"cluster node", nil, false},
		{"standalone node", standalone, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, dir := healthCopy(t)
			if c.members != nil {
				must(t, os.WriteFile(filepath.Join(dir, "etc-pve/.members"), c.members, 0o644))
			}
			d := &Deps{Config: cfg, Run: &fakeRun{missing: map[string]bool{"corosync-cfgtool": true}}, Files: &SlowFS{}, Log: slog.New(slog.DiscardHandler)}
			_, err := newCorosync(d)(context.Background())
			if c.absent {
				if !errors.Is(err, ErrAbsent) {
					t.Fatalf("standalone: %v, want absent", err)
				}
				return
			}
			if err == nil || errors.Is(err, ErrAbsent) || runner.NotFound(err) {
				t.Fatalf("cluster node: %v (absent %v, not-installed %v), want a failure", err, errors.Is(err, ErrAbsent), runner.NotFound(err))
			}
			for _, want := range []string{"corosync-cfgtool not found", "cluster node"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%q does not say %q", err, want)
				}
			}
		})
	}
}

// The README's demo (`once --config testdata/agent-demo.toml` with
// testdata/fakebin first on PATH) shows the Proxmox health keys: the demo
// config points every [pve] path at the fixture host, and the fake
// corosync-cfgtool answers through the real runner, so the slow round has
// backup jobs and guests and no error entry.
func TestDemoConfigShowsHealth(t *testing.T) {
	b, err := os.ReadFile("../../testdata/agent-demo.toml")
	must(t, err)
	cfg, err := config.Parse(b, func() (string, error) { return "pve1", nil })
	must(t, err)
	for _, p := range []*string{&cfg.PVE.EtcDir, &cfg.PVE.LibDir, &cfg.PVE.LogDir, &cfg.PVE.AptListsDir, &cfg.PVE.SubscriptionFile} {
		if !strings.HasPrefix(*p, "testdata/pve-health/") {
			t.Errorf("demo [pve] path %q is not in the fixture host", *p)
		}
		*p = "../../" + *p
	}
	cfg.Commands.CorosyncCfgtool, err = filepath.Abs("../../testdata/fakebin/corosync-cfgtool")
	must(t, err)
	cfg.Sources = config.Sources{}
	setListTimes(t)
	s := healthRound(t, cfg, &runner.Runner{}, nil)
	if len(s.Errors) != 0 {
		t.Errorf("errors: %v", s.Errors)
	}
	backups, _ := json.Marshal(s.Data["backups"])
	var got struct {
		Jobs   []json.RawMessage `json:"jobs"`
		Guests []struct {
			Job *string `json:"job"`
		} `json:"guests"`
	}
	must(t, json.Unmarshal(backups, &got))
	if len(got.Jobs) == 0 || len(got.Guests) == 0 || got.Guests[0].Job == nil {
		t.Errorf("backups: %s", backups)
	}
	if c, ok := s.Data["corosync"].(CorosyncData); !ok || len(c.Links) == 0 {
		t.Errorf("corosync: %#v", s.Data["corosync"])
	}
}
