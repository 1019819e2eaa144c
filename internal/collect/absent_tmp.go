package collect

import "errors"

// ErrAbsent marks a source that does not apply on this host. Temporary:
// the registry commit on main defines it; this file goes when it is merged.
var ErrAbsent = errors.New("not present on this host")
