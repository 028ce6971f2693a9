//go:build !linux

package relay

import (
	"errors"
	"os"
)

func syncFS() (func(*os.File) error, error) {
	return nil, errors.New("syncfs is Linux only")
}
