package relay

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// syncFS returns the syncfs(2) of a file's file system, when the kernel
// reports write-back errors through it (Linux 5.8 and later).
func syncFS() (func(*os.File) error, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return nil, err
	}
	release := unix.ByteSliceToString(u.Release[:])
	if !syncfsReportsErrors(release) {
		return nil, fmt.Errorf("syncfs reports write-back errors from Linux 5.8, not on %s", release)
	}
	return func(f *os.File) error {
		// f.Fd would set the file blocking; a directory never is otherwise.
		rc, err := f.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = unix.Syncfs(int(fd)) }); err != nil {
			return err
		}
		if serr != nil {
			return &os.PathError{Op: "syncfs", Path: f.Name(), Err: serr}
		}
		return nil
	}, nil
}

// syncfsReportsErrors reports whether a Linux release ("6.1.0-18-amd64",
// "5.8-rc1") is 5.8 or later.
func syncfsReportsErrors(release string) bool {
	major, rest, ok := strings.Cut(release, ".")
	if !ok {
		return false
	}
	minor := rest[:len(rest)-len(strings.TrimLeft(rest, "0123456789"))]
	ma, err1 := strconv.Atoi(major)
	mi, err2 := strconv.Atoi(minor)
	return err1 == nil && err2 == nil && (ma > 5 || ma == 5 && mi >= 8)
}
