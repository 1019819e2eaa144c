package collect

// Pointer fields for numbers that may be null. A payload field of type
// lenient.Float costs a json.Marshaler call and a re-scan of its output
// per value; the fast round's host sources write hundreds of values, and
// *float64 is encoded natively (nil: null). The pointers come from one
// slab per source and round (never from state a later round changes: a
// sample is encoded after its round, maybe during the next).

// floats hands out pointers to float64 values.
type floats []float64

func newFloats(n int) *floats {
	f := make(floats, 0, n)
	return &f
}

// of returns a pointer to a copy of v. Past the slab's capacity a new
// slab is started; the pointers already given out stay valid.
func (f *floats) of(v float64) *float64 {
	if len(*f) == cap(*f) {
		*f = make(floats, 0, max(8, 2*cap(*f)))
	}
	*f = append(*f, v)
	return &(*f)[len(*f)-1]
}

// uints hands out pointers to uint64 values.
type uints []uint64

func newUints(n int) *uints {
	u := make(uints, 0, n)
	return &u
}

func (u *uints) of(v uint64) *uint64 {
	if len(*u) == cap(*u) {
		*u = make(uints, 0, max(8, 2*cap(*u)))
	}
	*u = append(*u, v)
	return &(*u)[len(*u)-1]
}

// round2 keeps two decimals: finer digits are noise at a 30 s cadence.
func round2(v float64) float64 {
	if v > 1e15 || v < -1e15 {
		return v
	}
	if v < 0 {
		return -float64(int64(-v*100+0.5)) / 100
	}
	return float64(int64(v*100+0.5)) / 100
}
