package reporter

import (
	"fmt"
	"testing"
)

func item(i, size int) Item {
	return Item{Kind: fmt.Sprint(i), Body: make([]byte, size)}
}

func TestQueueBounds(t *testing.T) {
	cases := []struct {
		name           string
		maxItems, maxB int
		sizes          []int
		wantKinds      []string
		wantDropped    uint64
		wantBytes      int
	}{
		{"fits", 3, 100, []int{10, 10}, []string{"0", "1"}, 0, 20},
		{"count drops oldest", 2, 100, []int{1, 1, 1, 1}, []string{"2", "3"}, 2, 2},
		{"bytes drop oldest", 10, 25, []int{10, 10, 10}, []string{"1", "2"}, 1, 20},
		{"oversized item kept alone", 10, 5, []int{1, 50}, []string{"1"}, 1, 50},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := Queue{MaxItems: c.maxItems, MaxBytes: c.maxB}
			for i, s := range c.sizes {
				q.Push(item(i, s))
			}
			var got []string
			for i := 0; i < q.Len(); i++ {
				got = append(got, q.At(i).Kind)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.wantKinds) || q.Dropped() != c.wantDropped || q.Bytes() != c.wantBytes {
				t.Fatalf("kinds %v dropped %d bytes %d; want %v %d %d", got, q.Dropped(), q.Bytes(), c.wantKinds, c.wantDropped, c.wantBytes)
			}
		})
	}
}

func TestQueueFIFOAcrossCompaction(t *testing.T) {
	q := Queue{MaxItems: 1000, MaxBytes: 1 << 20}
	next := 0
	for round := 0; round < 50; round++ {
		for i := 0; i < 30; i++ {
			q.Push(Item{Kind: fmt.Sprint(round*30 + i), Body: []byte{1}})
		}
		for i := 0; i < 25; i++ {
			it, ok := q.PopFront()
			if !ok || it.Kind != fmt.Sprint(next) {
				t.Fatalf("popped %q, want %d", it.Kind, next)
			}
			next++
		}
	}
	if q.Len() != 250 || q.Bytes() != 250 {
		t.Fatalf("len %d bytes %d", q.Len(), q.Bytes())
	}
	if _, ok := (&Queue{}).PopFront(); ok {
		t.Fatal("pop from empty queue")
	}
}
