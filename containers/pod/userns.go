package pod

import (
	"errors"
	"fmt"
	"math"

	"github.com/kurmaos/kurma/containers/stage"
)

// UserNSSize is how many user and group IDs a pod in a user namespace
// has: 0 to 65535 inside, as the images it runs expect (nobody is
// 65534).
const UserNSSize = 65536

// IDPool is where pods in user namespaces get their IDs from: Ranges
// ranges of UserNSSize IDs each, from FirstID on, users and groups alike
// (the pool is the same for both). Each pod in a user namespace holds
// one range from its creation until it is removed; IDs below 65536 are
// the host's own and never in the pool.
type IDPool struct {
	FirstID uint32
	Ranges  int
}

// check reports what is wrong with the pool.
func (p IDPool) check() error {
	switch {
	case p.Ranges < 0:
		return fmt.Errorf("user namespaces: %d ranges", p.Ranges)
	case p.Ranges == 0:
		return nil
	case p.FirstID < UserNSSize:
		return fmt.Errorf("user namespaces: the first ID %d is below %d, among the host's own", p.FirstID, UserNSSize)
	case uint64(p.FirstID)+uint64(p.Ranges)*UserNSSize > math.MaxUint32:
		return fmt.Errorf("user namespaces: %d ranges from %d go past the last ID, %d", p.Ranges, p.FirstID, uint32(math.MaxUint32-1))
	}
	return nil
}

// ErrNoIDRange is wrapped by the error of a pod that asks for a user
// namespace when every range of the pool is held (it also wraps
// ErrNoCapacity).
var ErrNoIDRange = errors.New("no free ID range for a user namespace")

// idRanges hands out the ranges of an IDPool; the Manager's mutex
// guards it.
type idRanges struct {
	pool IDPool
	held []bool // by index
}

func newIDRanges(p IDPool) *idRanges {
	return &idRanges{pool: p, held: make([]bool, p.Ranges)}
}

// take holds the first free range.
func (r *idRanges) take() (*stage.IDMap, error) {
	if r.pool.Ranges == 0 {
		return nil, invalid("pod: isolator %s: user: \"child\": this daemon has no IDs for user namespaces (pods.user_namespaces.ranges is 0)", NamespacesIsolator)
	}
	for i, h := range r.held {
		if !h {
			r.held[i] = true
			return &stage.IDMap{HostID: r.pool.FirstID + uint32(i)*UserNSSize, Size: UserNSSize}, nil
		}
	}
	return nil, fmt.Errorf("%w: %w: the %d ranges of %d IDs from %d are held by pods (pods.user_namespaces); remove pods that have ended",
		ErrNoCapacity, ErrNoIDRange, r.pool.Ranges, UserNSSize, r.pool.FirstID)
}

// index is the range holding the host ID id, or -1.
func (r *idRanges) index(id uint32) int {
	if id < r.pool.FirstID {
		return -1
	}
	i := int((id - r.pool.FirstID) / UserNSSize)
	if i >= len(r.held) {
		return -1
	}
	return i
}

// hold marks m's range held (a pod found again); a range outside the
// pool (which changed meanwhile) is left alone.
func (r *idRanges) hold(m *stage.IDMap) {
	if m == nil {
		return
	}
	if i := r.index(m.HostID); i >= 0 {
		r.held[i] = true
	}
}

// release gives m's range back.
func (r *idRanges) release(m *stage.IDMap) {
	if m == nil {
		return
	}
	if i := r.index(m.HostID); i >= 0 {
		r.held[i] = false
	}
}

// free counts the ranges not held.
func (r *idRanges) free() int {
	n := 0
	for _, h := range r.held {
		if !h {
			n++
		}
	}
	return n
}
