package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
)

// verify walks a spool file's page structure the way bbolt will trust it,
// before bbolt opens it. bbolt checks only its meta pages: an element
// whose length points far past its page made a commit allocate gigabytes
// (found by FuzzOpen), and a branch that points back at itself would make
// a cursor loop forever. Neither a recover nor SetPanicOnFault catches
// those, so the file is checked first and moved aside if it fails.
//
// The walk reads every reachable page once (the whole file, at open
// only), holding one page and a bit per page. Structural faults wrap
// errDamaged; a read error is returned as it is (the disk, not the file).
// A file without a valid meta page is left for bbolt to refuse or, when
// empty, to initialise.
func verify(r io.ReaderAt, size int64) error {
	m, ok, err := findMeta(r, size)
	if err != nil || !ok {
		return err
	}
	if m.pageSize < 512 || m.pageSize > 1<<24 || m.pageSize&(m.pageSize-1) != 0 {
		return damagedf("page size %d", m.pageSize)
	}
	if m.hwm < 2 || m.hwm > uint64(size)/uint64(m.pageSize) {
		return damagedf("%d pages claimed, the file holds %d", m.hwm, uint64(size)/uint64(m.pageSize))
	}
	w := &walker{r: r, pageSize: uint64(m.pageSize), hwm: m.hwm, seen: make([]uint64, (m.hwm+63)/64)}
	if m.root < 2 {
		return damagedf("root bucket at page %d", m.root)
	}
	if err := w.page(m.root, 0); err != nil {
		return err
	}
	if m.freelist != noFreelist {
		return w.freelist(m.freelist)
	}
	return nil
}

// bbolt's on-disk format (go.etcd.io/bbolt internal/common), native byte
// order as bbolt writes it.
const (
	pageHeader   = 16 // id u64, flags u16, count u16, overflow u32
	elemSize     = 16 // branch: pos, ksize u32, pgid u64; leaf: flags, pos, ksize, vsize u32
	branchFlag   = 0x01
	leafFlag     = 0x02
	freelistFlag = 0x10
	bucketLeaf   = 0x01
	boltMagic    = 0xED0CDAED
	boltVersion  = 2
	metaSize     = 64 // through the checksum
	noFreelist   = ^uint64(0)
	// A B+tree of a few hundred MiB is a handful of levels deep; far past
	// this the structure is a loop, not a tree.
	maxDepth = 64
)

var ne = binary.NativeEndian

type meta struct {
	pageSize            uint32
	root, freelist, hwm uint64
	txid                uint64
}

// findMeta picks the meta page bbolt would: the page size from the first
// valid one (page 0, else page 1 at each possible page size), then of the
// two the valid one with the higher transaction id.
func findMeta(r io.ReaderAt, size int64) (meta, bool, error) {
	m0, ok0, err := readMeta(r, 0)
	if err != nil {
		return meta{}, false, err
	}
	pageSize := m0.pageSize
	if !ok0 {
		for i := 0; i <= 14; i++ {
			pos := int64(1024) << i
			if pos >= size-1024 {
				break
			}
			m, ok, err := readMeta(r, pos)
			if err != nil {
				return meta{}, false, err
			}
			if ok {
				return m, true, nil
			}
		}
		return meta{}, false, nil
	}
	m1, ok1, err := readMeta(r, int64(pageSize))
	if err != nil || !ok1 || m1.txid <= m0.txid {
		return m0, true, err
	}
	return m1, true, nil
}

// readMeta reads the meta page at off; ok is false when it is not a
// valid one (wrong magic, version or checksum), which is for bbolt to judge.
func readMeta(r io.ReaderAt, off int64) (meta, bool, error) {
	var b [pageHeader + metaSize]byte
	if _, err := r.ReadAt(b[:], off); err != nil {
		if errors.Is(err, io.EOF) {
			return meta{}, false, nil
		}
		return meta{}, false, fmt.Errorf("spool verify: %w", err)
	}
	p := b[pageHeader:]
	h := fnv.New64a()
	h.Write(p[:56])
	if ne.Uint32(p[0:]) != boltMagic || ne.Uint32(p[4:]) != boltVersion || ne.Uint64(p[56:]) != h.Sum64() {
		return meta{}, false, nil
	}
	return meta{pageSize: ne.Uint32(p[8:]), root: ne.Uint64(p[16:]), freelist: ne.Uint64(p[32:]),
		hwm: ne.Uint64(p[40:]), txid: ne.Uint64(p[48:])}, true, nil
}

type walker struct {
	r        io.ReaderAt
	pageSize uint64
	hwm      uint64
	seen     []uint64 // a bit per page: reached already
}

func damagedf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errDamaged, fmt.Sprintf(format, args...))
}

// read claims page id and its overflow pages and returns their bytes.
func (w *walker) read(id uint64, flags uint16) ([]byte, error) {
	if id < 2 || id >= w.hwm {
		return nil, damagedf("page %d outside the file's %d pages", id, w.hwm)
	}
	var h [pageHeader]byte
	if _, err := w.r.ReadAt(h[:], int64(id*w.pageSize)); err != nil {
		return nil, fmt.Errorf("spool verify: page %d: %w", id, err)
	}
	over := uint64(ne.Uint32(h[12:]))
	switch {
	case ne.Uint64(h[0:]) != id:
		return nil, damagedf("page %d says it is page %d", id, ne.Uint64(h[0:]))
	case flags == freelistFlag && ne.Uint16(h[8:]) != freelistFlag,
		flags != freelistFlag && ne.Uint16(h[8:]) != branchFlag && ne.Uint16(h[8:]) != leafFlag:
		return nil, damagedf("page %d has type %#x", id, ne.Uint16(h[8:]))
	case id+over >= w.hwm:
		return nil, damagedf("page %d runs %d pages past the file's %d", id, over, w.hwm)
	}
	for p := id; p <= id+over; p++ {
		if w.seen[p/64]&(1<<(p%64)) != 0 {
			return nil, damagedf("page %d reached twice", p)
		}
		w.seen[p/64] |= 1 << (p % 64)
	}
	buf := make([]byte, (over+1)*w.pageSize)
	if _, err := w.r.ReadAt(buf, int64(id*w.pageSize)); err != nil {
		return nil, fmt.Errorf("spool verify: page %d: %w", id, err)
	}
	return buf, nil
}

func (w *walker) page(id uint64, depth int) error {
	if depth > maxDepth {
		return damagedf("tree deeper than %d at page %d", maxDepth, id)
	}
	buf, err := w.read(id, 0)
	if err != nil {
		return err
	}
	return w.node(buf, id, depth, false)
}

// node checks one branch or leaf page (buf, a page or an inline bucket's
// page) and descends into what it points at. An inline bucket's page is a
// leaf without nested buckets (bbolt inlines only those), so the walk
// never enters the same bytes twice and stays linear in the file.
func (w *walker) node(buf []byte, id uint64, depth int, inline bool) error {
	if len(buf) < pageHeader {
		return damagedf("inline bucket in page %d shorter than a page header", id)
	}
	flags, count := ne.Uint16(buf[8:]), uint64(ne.Uint16(buf[10:]))
	switch {
	case flags != leafFlag && (inline || flags != branchFlag):
		return damagedf("page %d: node of type %#x", id, flags)
	case pageHeader+count*elemSize > uint64(len(buf)):
		return damagedf("page %d: %d elements do not fit", id, count)
	case flags == branchFlag && count == 0:
		return damagedf("page %d: empty branch", id) // bbolt's cursor reads element 0 regardless
	}
	end := pageHeader + count*elemSize // where the next element's data may start
	var prev []byte
	for i := uint64(0); i < count; i++ {
		el, err := element(buf, flags, i, end)
		if err != nil {
			return damagedf("page %d: %v", id, err)
		}
		if i > 0 && bytes.Compare(el.key, prev) <= 0 {
			return damagedf("page %d: key %d out of order", id, i)
		}
		prev, end = el.key, el.end
		switch {
		case flags == branchFlag:
			err = w.page(el.child, depth+1)
		case el.bucket && inline:
			err = damagedf("page %d: bucket nested in an inline bucket", id)
		case el.bucket:
			err = w.bucket(el.value, id, depth+1)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// elem is one element of a branch or leaf page.
type elem struct {
	key, value []byte
	child      uint64 // branch: the page it points at
	bucket     bool   // leaf: the value is a nested bucket
	end        uint64 // offset in the page just past its data
}

// element reads element i of a page. bbolt lays element data out in
// order, end to end, after the element headers (WriteInodeToPage), so
// data must start at or after end, where the previous element's stopped:
// overlapping data could otherwise be walked over and over.
func element(buf []byte, flags uint16, i, end uint64) (elem, error) {
	e := pageHeader + i*elemSize
	var el elem
	var pos, ksize, vsize uint64
	if flags == branchFlag {
		pos, ksize, el.child = uint64(ne.Uint32(buf[e:])), uint64(ne.Uint32(buf[e+4:])), ne.Uint64(buf[e+8:])
	} else {
		el.bucket = ne.Uint32(buf[e:])&bucketLeaf != 0
		pos, ksize, vsize = uint64(ne.Uint32(buf[e+4:])), uint64(ne.Uint32(buf[e+8:])), uint64(ne.Uint32(buf[e+12:]))
	}
	start := e + pos
	el.end = start + ksize + vsize
	switch {
	case el.end > uint64(len(buf)):
		return el, fmt.Errorf("element %d runs past the page", i)
	case start < end:
		return el, fmt.Errorf("element %d overlaps what comes before it", i)
	}
	el.key, el.value = buf[start:start+ksize], buf[start+ksize:el.end]
	return el, nil
}

// bucket checks a nested bucket's header (root page, sequence) and its
// tree, or its inline page when the root is 0.
func (w *walker) bucket(v []byte, id uint64, depth int) error {
	if len(v) < 16 {
		return damagedf("page %d: bucket header of %d bytes", id, len(v))
	}
	if depth > maxDepth {
		return damagedf("buckets nested deeper than %d in page %d", maxDepth, id)
	}
	if root := ne.Uint64(v); root != 0 {
		return w.page(root, depth)
	}
	return w.node(v[16:], id, depth, true)
}

// freelist checks the free page list: inside its pages, and naming only
// pages of the file that the tree does not use (bbolt would hand them out
// again, or write past the file's end).
func (w *walker) freelist(id uint64) error {
	buf, err := w.read(id, freelistFlag)
	if err != nil {
		return err
	}
	start, count := uint64(pageHeader), uint64(ne.Uint16(buf[10:]))
	if count == 0xFFFF {
		if len(buf) < pageHeader+8 {
			return damagedf("freelist page %d too short for its count", id)
		}
		start, count = pageHeader+8, ne.Uint64(buf[pageHeader:])
	}
	if count > (uint64(len(buf))-start)/8 {
		return damagedf("freelist page %d: %d ids do not fit", id, count)
	}
	for i := uint64(0); i < count; i++ {
		p := ne.Uint64(buf[start+i*8:])
		if p < 2 || p >= w.hwm {
			return damagedf("freelist names page %d outside the file's %d pages", p, w.hwm)
		}
		if w.seen[p/64]&(1<<(p%64)) != 0 {
			return damagedf("freelist names page %d, which is in use or named twice", p)
		}
		w.seen[p/64] |= 1 << (p % 64) // a page freed twice is handed out twice
	}
	return nil
}
