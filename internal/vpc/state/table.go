package state

import (
	"encoding/json"
	"fmt"
	"slices"
)

// table holds one kind of object by id, with its ids kept sorted so that
// describe calls paginate without sorting on every request.
type table[T any] struct {
	kind   string
	rows   map[string]*T
	sorted []string
	// reindex keeps secondary indexes in step; it sees (old, nil) for a
	// delete, (nil, cur) for an insert and (old, cur) for an update.
	reindex func(old, cur *T)
}

func newTable[T any](kind string) *table[T] {
	return &table[T]{kind: kind, rows: map[string]*T{}}
}

func (t *table[T]) get(id string) (*T, bool) {
	v, ok := t.rows[id]
	return v, ok
}

// set stores v (nil deletes) and returns the previous value.
func (t *table[T]) set(id string, v *T) *T {
	old := t.rows[id]
	switch {
	case v == nil && old != nil:
		delete(t.rows, id)
		if i, found := slices.BinarySearch(t.sorted, id); found {
			t.sorted = slices.Delete(t.sorted, i, i+1)
		}
	case v != nil && old == nil:
		t.rows[id] = v
		i, _ := slices.BinarySearch(t.sorted, id)
		t.sorted = slices.Insert(t.sorted, i, id)
	case v != nil:
		t.rows[id] = v
	}
	if t.reindex != nil && (old != nil || v != nil) {
		t.reindex(old, v)
	}
	return old
}

// list returns the objects in id order.
func (t *table[T]) list() []*T {
	out := make([]*T, len(t.sorted))
	for i, id := range t.sorted {
		out[i] = t.rows[id]
	}
	return out
}

func (t *table[T]) name() string { return t.kind }

func (t *table[T]) encode(id string) ([]byte, bool, error) {
	v, ok := t.rows[id]
	if !ok {
		return nil, false, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, false, fmt.Errorf("encoding %s %s: %w", t.kind, id, err)
	}
	return b, true, nil
}

func (t *table[T]) decode(id string, data []byte) error {
	v := new(T)
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decoding %s %s: %w", t.kind, id, err)
	}
	t.set(id, v)
	return nil
}

// reserve makes room for n more rows before a load, so that loading 100,000 ENIs does not
// rehash the map and regrow the sorted ids a dozen times over.
func (t *table[T]) reserve(n int) {
	if len(t.rows) == 0 {
		t.rows = make(map[string]*T, n)
	}
	t.sorted = slices.Grow(t.sorted, n)
}

// anyTable is what the store needs to persist and load a table without
// knowing its type.
type anyTable interface {
	name() string
	reserve(n int)
	encode(id string) ([]byte, bool, error)
	decode(id string, data []byte) error
}

// put stores v in a transaction, recording how to undo it.
func put[T any](tx *Tx, t *table[T], id string, v *T) {
	tx.mustWrite()
	old := t.set(id, v)
	tx.undo = append(tx.undo, func() { t.set(id, old) })
	tx.markDirty(t.kind, id)
}

// remove deletes id in a transaction.
func remove[T any](tx *Tx, t *table[T], id string) {
	put[T](tx, t, id, nil)
}
