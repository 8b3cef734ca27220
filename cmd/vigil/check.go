package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// cmdCheck verifies each source's credentials and prints what the account
// can use.
func cmdCheck(ctx context.Context, e *env, args []string) error {
	if len(args) > 1 {
		return usageError("usage: vigil check [SOURCE]")
	}
	only := ""
	if len(args) == 1 {
		only = args[0]
	}
	a, err := loadConfig(e)
	if err != nil {
		return err
	}
	cols, err := a.collectors(only, nil)
	if err != nil {
		return err
	}
	var failures []string
	for _, c := range cols {
		fmt.Fprintf(e.stdout, "%s:\n", c.Name())
		if err := c.Check(ctx, e.stdout); err != nil {
			fmt.Fprintf(e.stdout, "  FAILED: %v\n", err)
			failures = append(failures, fmt.Sprintf("%s: %v", c.Name(), err))
		}
	}
	if len(failures) > 0 {
		return errors.New(strings.Join(failures, "; "))
	}
	return nil
}
