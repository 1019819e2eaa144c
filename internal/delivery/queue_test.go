package delivery

import (
	"fmt"
	"testing"
)

func item(i, size int) *Item {
	return &Item{Kind: fmt.Sprint(i), Body: make([]byte, size)}
}

func kinds(q *Queue) []string {
	var got []string
	q.Each(func(it *Item) bool { got = append(got, it.Kind); return true })
	return got
}

func TestQueueBounds(t *testing.T) {
	cases := []struct {
		name           string
		maxItems, maxB int
		sizes          []int
		wantKinds      []string
		wantDropped    int64
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
			got := kinds(&q)
			if fmt.Sprint(got) != fmt.Sprint(c.wantKinds) || q.Dropped() != c.wantDropped || q.Bytes() != c.wantBytes {
				t.Fatalf("kinds %v dropped %d bytes %d; want %v %d %d", got, q.Dropped(), q.Bytes(), c.wantKinds, c.wantDropped, c.wantBytes)
			}
		})
	}
}

func TestQueueOutOfOrderDone(t *testing.T) {
	q := Queue{MaxItems: 1000, MaxBytes: 1 << 20}
	var items []*Item
	for i := 0; i < 600; i++ {
		it := item(i, 1)
		items = append(items, it)
		q.Push(it)
	}
	// Complete every odd item, then the evens in reverse.
	for i := 1; i < 600; i += 2 {
		q.Done(items[i])
	}
	q.Done(items[1]) // idempotent
	if q.Len() != 300 || q.Bytes() != 300 {
		t.Fatalf("len %d bytes %d", q.Len(), q.Bytes())
	}
	if k := kinds(&q); k[0] != "0" || k[1] != "2" || len(k) != 300 {
		t.Fatalf("order %v", k[:3])
	}
	for i := 598; i >= 0; i -= 2 {
		q.Done(items[i])
	}
	if q.Len() != 0 || q.Bytes() != 0 || len(q.items) != 0 {
		t.Fatalf("not empty: %d %d %d", q.Len(), q.Bytes(), len(q.items))
	}
	q.Push(item(1000, 3))
	if k := kinds(&q); len(k) != 1 || k[0] != "1000" {
		t.Fatalf("%v", k)
	}
}
