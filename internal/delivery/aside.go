package delivery

import "github.com/proxmox-agent/proxmox-agent/internal/dump"

// KeepFunc keeps a sample set aside (spool.Aside.Keep) and returns where.
type KeepFunc func(kind string, payload []byte) (path string, err error)

// SetAside returns what Delivery.Lost hands a poisoned item to: keep
// stores it where `replay` can send it later (nil: nowhere, it is
// dropped), and the outcome is logged once per sample, saying where the
// sample is. It leaves the queue after this; the error, when it could not
// be kept, leaves it in the spool (if it is there) to be tried again after
// a restart, and AsideError says why.
func (s *Store) SetAside(keep KeepFunc) func(*Item) error {
	return func(it *Item) error {
		attrs := []any{"kind", it.Kind, "collected_at", dump.Timestamp(it.CollectedAt), "attempts", it.Failures()}
		if keep == nil {
			s.log.Warn("sample set aside and dropped: the server failed on it every time, and without a spool there is no set-aside file", attrs...)
			return nil
		}
		path, err := keep(it.Kind, it.Body)
		s.asideErr = ""
		if err != nil {
			s.asideErr = err.Error()
		}
		switch {
		case err == nil:
			s.log.Warn("sample set aside: the server failed on it every time; kept for proxmox-agent replay",
				append(attrs, "file", path)...)
		case s.OnDisk(it):
			s.log.Warn("sample set aside: the server failed on it every time, and it could not be kept for replay; it stays in the spool and is tried again after a restart",
				append(attrs, "err", err)...)
		default:
			s.log.Warn("sample set aside and dropped: the server failed on it every time, and it could not be kept (it was in memory only)",
				append(attrs, "err", err)...)
		}
		return err
	}
}

// AsideError is why the last sample set aside could not be kept ("" when
// it was, or none was set aside).
func (s *Store) AsideError() string { return s.asideErr }
