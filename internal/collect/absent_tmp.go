package collect

import "errors"

// ErrAbsent is a placeholder until the registry lands on main (it defines
// the same name); this file is deleted then.
var ErrAbsent = errors.New("not present on this host")
