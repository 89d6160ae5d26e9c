package stage

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// lookupID finds name in a passwd or group file (name:x:ID:...) and
// returns its ID.
func lookupID(r io.Reader, name string) (int, bool) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 3 || f[0] != name {
			continue
		}
		id, err := strconv.Atoi(f[2])
		if err != nil || id < 0 {
			continue
		}
		return id, true
	}
	return 0, false
}

// idResolver resolves the user or group of an app the way the appc spec
// says (aci.md, app.user/app.group): a name found in the image's
// /etc/passwd (or /etc/group) first, then a number, then, for a value
// starting with "/", the owner (or group) of that file in the root.
type idResolver struct {
	// open opens a file of the app's root; nil reader if it is missing.
	open func(name string) (io.ReadCloser, error)
	// owner returns the uid and gid of a file of the app's root.
	owner func(name string) (uid, gid int, err error)
}

func (r idResolver) resolve(value, dbFile, what string) (int, error) {
	if value == "" {
		return 0, fmt.Errorf("%s is empty", what)
	}
	if strings.HasPrefix(value, "/") {
		uid, gid, err := r.owner(value)
		if err != nil {
			return 0, fmt.Errorf("%s %q: %w", what, value, err)
		}
		if what == "user" {
			return uid, nil
		}
		return gid, nil
	}
	if f, err := r.open(dbFile); err == nil && f != nil {
		id, ok := lookupID(f, value)
		f.Close()
		if ok {
			return id, nil
		}
	}
	if id, err := strconv.Atoi(value); err == nil && id >= 0 {
		return id, nil
	}
	return 0, fmt.Errorf("%s %q: not found in the image's %s and not a number", what, value, dbFile)
}
