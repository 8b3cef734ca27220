package lockfile_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ti/vigil/internal/lockfile"
)

func TestSecondWriterFailsWithHolderPID(t *testing.T) {
	dir := t.TempDir()
	l, err := lockfile.Acquire(t.Context(), dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = lockfile.Acquire(t.Context(), dir, 200*time.Millisecond)
	if !errors.Is(err, lockfile.ErrInUse) {
		t.Fatalf("second acquire: %v", err)
	}
	if want := fmt.Sprintf("data dir in use by process %d", os.Getpid()); !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l2, err := lockfile.Acquire(t.Context(), dir, 0)
	if err != nil {
		t.Fatalf("acquire after release: %v", err)
	}
	l2.Release()
}

func TestWaitingWriterGetsLockWhenReleased(t *testing.T) {
	dir := t.TempDir()
	l, err := lockfile.Acquire(t.Context(), dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	go func() { time.Sleep(300 * time.Millisecond); l.Release() }()
	l2, err := lockfile.Acquire(t.Context(), dir, 10*time.Second)
	if err != nil {
		t.Fatalf("waiting acquire: %v", err)
	}
	l2.Release()
}

// TestKilledHolderNeverBlocks runs a child process that takes the lock and is
// killed with SIGKILL; the next Acquire must succeed at once.
func TestKilledHolderNeverBlocks(t *testing.T) {
	if dir := os.Getenv("LOCKFILE_CHILD_DIR"); dir != "" {
		if _, err := lockfile.Acquire(t.Context(), dir, 0); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("locked")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledHolderNeverBlocks$")
	cmd.Env = append(os.Environ(), "LOCKFILE_CHILD_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "locked" {
		t.Fatalf("child said %q", line)
	}
	if _, err := lockfile.Acquire(t.Context(), dir, 0); !errors.Is(err, lockfile.ErrInUse) || !strings.Contains(err.Error(), fmt.Sprint(cmd.Process.Pid)) {
		t.Fatalf("acquire while child holds the lock: %v", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	l, err := lockfile.Acquire(t.Context(), dir, 0)
	if err != nil {
		t.Fatalf("acquire after the holder was killed: %v", err)
	}
	l.Release()
}
