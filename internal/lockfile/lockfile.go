// Package lockfile keeps two vigil writers off one data directory. The lock
// is an flock(2) on a file that holds the owner's PID: the kernel drops it
// when the owning process dies, so a lock left by a killed process never
// blocks the next run.
package lockfile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Name is the lock file's name inside the data directory.
const Name = "vigil.lock"

// ErrInUse is wrapped by the error Acquire returns when another process holds
// the lock.
var ErrInUse = errors.New("data dir in use")

// Lock is a held lock.
type Lock struct {
	f *os.File
}

// Acquire takes the write lock of dir, creating dir if needed. If another
// process holds it, Acquire waits up to wait (0: not at all), then fails with
// an error that wraps ErrInUse and names the holder's PID.
func Acquire(ctx context.Context, dir string, wait time.Duration) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("lock: create data dir: %w", err)
	}
	path := filepath.Join(dir, Name)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			holder := readPID(path)
			f.Close()
			if holder > 0 {
				return nil, fmt.Errorf("%w by process %d (%s): stop it or wait for it to finish", ErrInUse, holder, dir)
			}
			return nil, fmt.Errorf("%w by another process (%s): stop it or wait for it to finish", ErrInUse, dir)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

func readPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// Release drops the lock.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	return errors.Join(err, l.f.Close())
}
