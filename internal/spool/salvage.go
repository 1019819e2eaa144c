package spool

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"slices"

	"golang.org/x/sys/unix"
)

// SalvageReport says what Salvage found in a spool file.
type SalvageReport struct {
	// Readable counts the records returned; Unreadable those found whose
	// bytes failed their checks (left out).
	Readable, Unreadable int
	// Scanned counts records found by the page scan and not through the
	// file's tree: a page scan also finds pages freed earlier, so these
	// may include samples delivered before the damage (sent again: at
	// least once).
	Scanned int
	// Damage lists what was skipped ("page 7: ..."), at most maxDamage.
	Damage []string
}

const maxDamage = 20

// Salvage reads every record still readable from a spool file, typically
// one moved aside as damaged (spool.db.corrupt-<time>), and returns them
// oldest first. It opens the file read-only, takes no lock and writes
// nothing, and it does not trust the file: it walks bbolt's tree from the
// newest valid meta page as verify does, skipping a damaged page and what
// hangs below it rather than stopping, and when the tree is damaged or
// gone it also scans every page for leaf pages holding records. A record
// counts only when its CRC holds. An error means the file could not be
// read at all (missing, not a regular file, an I/O error at open).
func Salvage(path string) ([]Record, SalvageReport, error) { return salvageFile(path, true) }

// salvageCount is Salvage holding no payloads: what the log line about a
// file moved aside needs, without a spool's worth of memory.
func salvageCount(path string) (SalvageReport, error) {
	_, rep, err := salvageFile(path, false)
	return rep, err
}

func salvageFile(path string, payloads bool) ([]Record, SalvageReport, error) {
	var rep SalvageReport
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, rep, fmt.Errorf("salvage %s: %w", path, &os.PathError{Op: "open", Path: path, Err: err})
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, rep, fmt.Errorf("salvage %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, rep, fmt.Errorf("salvage %s: not a regular file (%s)", path, st.Mode().Type())
	}
	recs, rep, err := salvage(f, st.Size(), payloads)
	if err != nil {
		return nil, rep, fmt.Errorf("salvage %s: %w", path, err)
	}
	return recs, rep, nil
}

// salvage is Salvage on the file's bytes (fuzzed: any input gives records
// and a report, never a panic or a loop).
func salvage(r io.ReaderAt, size int64, payloads bool) ([]Record, SalvageReport, error) {
	var rep SalvageReport
	sv := &salvager{r: r, size: size, found: map[uint64]Record{}, rep: &rep, payloads: payloads}
	m, ok, err := findMeta(r, size)
	if err != nil {
		return nil, rep, err
	}
	whole := false
	if ok && sv.setPageSize(uint64(m.pageSize)) {
		whole = sv.tree(m.root)
	} else {
		sv.damage("no valid meta page: scanning every page")
	}
	if !whole {
		sv.scan()
	}
	recs := make([]Record, 0, len(sv.found))
	for _, r := range sv.found {
		recs = append(recs, r)
	}
	slices.SortFunc(recs, func(a, b Record) int { return cmpU64(a.Seq, b.Seq) })
	rep.Readable = len(recs)
	return recs, rep, nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

type salvager struct {
	r        io.ReaderAt
	size     int64
	pageSize uint64
	pages    uint64
	seen     []uint64
	found    map[uint64]Record
	bad      map[uint64]bool // sequence numbers seen only damaged
	rep      *SalvageReport
	fromScan bool
	payloads bool // keep them (false: count only)
}

func (sv *salvager) setPageSize(ps uint64) bool {
	if ps < 512 || ps > 1<<24 || ps&(ps-1) != 0 {
		sv.damage(fmt.Sprintf("page size %d", ps))
		return false
	}
	sv.pageSize, sv.pages = ps, uint64(sv.size)/ps
	sv.seen = make([]uint64, (sv.pages+63)/64)
	return true
}

func (sv *salvager) damage(s string) {
	if len(sv.rep.Damage) < maxDamage {
		sv.rep.Damage = append(sv.rep.Damage, s)
	}
}

// page reads page id with its overflow pages, checking it lies inside the
// file and says it is page id; nil (and the damage noted) otherwise.
func (sv *salvager) page(id uint64) []byte {
	if id < 2 || id >= sv.pages {
		sv.damage(fmt.Sprintf("page %d outside the file's %d pages", id, sv.pages))
		return nil
	}
	var h [pageHeader]byte
	if _, err := sv.r.ReadAt(h[:], int64(id*sv.pageSize)); err != nil {
		sv.damage(fmt.Sprintf("page %d: %v", id, err))
		return nil
	}
	over := uint64(ne.Uint32(h[12:]))
	if ne.Uint64(h[0:]) != id || id+over >= sv.pages {
		return nil
	}
	buf := make([]byte, (over+1)*sv.pageSize)
	if _, err := sv.r.ReadAt(buf, int64(id*sv.pageSize)); err != nil {
		sv.damage(fmt.Sprintf("page %d: %v", id, err))
		return nil
	}
	return buf
}

// claim marks page id reached; false if it was already (a loop).
func (sv *salvager) claim(id uint64) bool {
	if sv.seen[id/64]&(1<<(id%64)) != 0 {
		return false
	}
	sv.seen[id/64] |= 1 << (id % 64)
	return true
}

// tree walks the root bucket from page root to the samples bucket and
// collects its records; it reports whether the walk met no damage.
func (sv *salvager) tree(root uint64) bool {
	before := len(sv.rep.Damage)
	found := false
	sv.node(root, 0, func(k, v []byte, bucket bool) {
		if bucket && string(k) == string(samplesBucket) {
			found = true
			sv.bucket(v)
		}
	})
	if !found {
		sv.damage("no samples bucket reachable")
	}
	return found && len(sv.rep.Damage) == before
}

// bucket walks a bucket's tree, or its inline page, collecting records.
func (sv *salvager) bucket(v []byte) {
	if len(v) < 16 {
		sv.damage("samples bucket header cut short")
		return
	}
	if root := ne.Uint64(v); root != 0 {
		sv.node(root, 1, sv.leaf)
		return
	}
	sv.elements(v[16:], 0, sv.leaf)
}

// node walks the tree at page id, calling fn for each leaf element; a
// damaged page is noted and skipped with what hangs below it.
func (sv *salvager) node(id uint64, depth int, fn func(k, v []byte, bucket bool)) {
	if depth > maxDepth || id >= sv.pages || id < 2 || !sv.claim(id) {
		sv.damage(fmt.Sprintf("page %d: outside the file, reached twice, or too deep", id))
		return
	}
	buf := sv.page(id)
	if buf == nil {
		sv.damage(fmt.Sprintf("page %d: unreadable or not what its parent says", id))
		return
	}
	if ne.Uint16(buf[8:]) == branchFlag {
		count := uint64(ne.Uint16(buf[10:]))
		if pageHeader+count*elemSize > uint64(len(buf)) {
			sv.damage(fmt.Sprintf("page %d: %d elements do not fit", id, count))
			return
		}
		for i := uint64(0); i < count; i++ {
			sv.node(ne.Uint64(buf[pageHeader+i*elemSize+8:]), depth+1, fn)
		}
		return
	}
	sv.elements(buf, id, fn)
}

// elements calls fn for each element of a leaf page (or inline bucket).
func (sv *salvager) elements(buf []byte, id uint64, fn func(k, v []byte, bucket bool)) {
	if len(buf) < pageHeader || ne.Uint16(buf[8:]) != leafFlag {
		sv.damage(fmt.Sprintf("page %d: not a leaf", id))
		return
	}
	count := uint64(ne.Uint16(buf[10:]))
	if pageHeader+count*elemSize > uint64(len(buf)) {
		sv.damage(fmt.Sprintf("page %d: %d elements do not fit", id, count))
		return
	}
	for i := uint64(0); i < count; i++ {
		el, err := element(buf, leafFlag, i, 0)
		if err != nil {
			sv.damage(fmt.Sprintf("page %d: %v", id, err))
			continue
		}
		fn(el.key, el.value, el.bucket)
	}
}

// leaf keeps one samples-bucket element as a record if it decodes.
func (sv *salvager) leaf(k, v []byte, bucket bool) {
	if bucket || len(k) != 8 {
		return
	}
	seq := binary.BigEndian.Uint64(k)
	if _, ok := sv.found[seq]; ok {
		return
	}
	r, err := decode(seq, v)
	if err != nil {
		if sv.bad == nil {
			sv.bad = map[uint64]bool{}
		}
		if !sv.bad[seq] {
			sv.bad[seq] = true
			sv.rep.Unreadable++
		}
		return
	}
	if sv.bad[seq] { // an older copy was damaged, this one is whole
		delete(sv.bad, seq)
		sv.rep.Unreadable--
	}
	if !sv.payloads {
		r = Record{Seq: seq}
	}
	sv.found[seq] = r
	if sv.fromScan {
		sv.rep.Scanned++
	}
}

// scan reads every page (at the page size found, or each common one when
// no meta page survives) and takes the records of every leaf page it has
// not walked already.
func (sv *salvager) scan() {
	sizes := []uint64{sv.pageSize}
	if sv.pageSize == 0 {
		sizes = []uint64{4096, 16384, 65536, 8192, 1024, 2048, 512}
	}
	sv.fromScan = true
	for _, ps := range sizes {
		seen := sv.seen
		if ps != sv.pageSize || seen == nil {
			if !sv.setPageSize(ps) {
				continue
			}
			seen = sv.seen
		}
		for id := uint64(2); id < sv.pages; id++ {
			if seen[id/64]&(1<<(id%64)) != 0 {
				continue
			}
			buf := sv.quietPage(id)
			if buf == nil {
				continue
			}
			// Its overflow pages are its own: not scanned again (a hostile
			// file of pages all claiming the rest would cost n² reads).
			next := id + uint64(len(buf))/sv.pageSize - 1
			if ne.Uint16(buf[8:]) != leafFlag {
				id = next
				continue
			}
			count := uint64(ne.Uint16(buf[10:]))
			for i := uint64(0); i < count && pageHeader+(i+1)*elemSize <= uint64(len(buf)); i++ {
				if el, err := element(buf, leafFlag, i, 0); err == nil {
					sv.leaf(el.key, el.value, el.bucket)
				}
			}
			id = next
		}
		if len(sv.found) > 0 {
			return // the page size that finds records is the file's
		}
	}
}

// quietPage is page without noting damage: most pages a scan reads are
// not leaves, and that is no news.
func (sv *salvager) quietPage(id uint64) []byte {
	var h [pageHeader]byte
	if _, err := sv.r.ReadAt(h[:], int64(id*sv.pageSize)); err != nil {
		return nil
	}
	over := uint64(ne.Uint32(h[12:]))
	if ne.Uint64(h[0:]) != id || id+over >= sv.pages {
		return nil
	}
	buf := make([]byte, (over+1)*sv.pageSize)
	if _, err := sv.r.ReadAt(buf, int64(id*sv.pageSize)); err != nil {
		return nil
	}
	return buf
}
