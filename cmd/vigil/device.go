package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigil-ti/vigil/internal/lockfile"
	"github.com/vigil-ti/vigil/internal/mispfeed"
	"github.com/vigil-ti/vigil/internal/sqlite"
)

// mispCheckEvery is how often serve looks for devices that stopped pulling.
const mispCheckEvery = 10 * time.Minute

// mispService is the MISP feed service of the configuration on store.
func (a *app) mispService(store mispfeed.Store) (*mispfeed.Service, error) {
	m := a.cfg.Feeds.MISP
	if m == nil {
		return nil, errors.New("no feeds.misp block is configured: add feeds.misp.groups and devices to the configuration (see README, Publishing MISP feeds)")
	}
	s := &mispfeed.Service{Store: store, Config: m, Clock: a.clock, Logger: a.log.With("feed", "misp")}
	if a.store != nil {
		s.Live = a.store
	}
	return s, nil
}

// serveMISP readies the MISP feeds for serve: the configured devices are
// synced into the store. It returns nil when no feed is configured.
func (a *app) serveMISP(ctx context.Context) (*mispfeed.Service, error) {
	if a.cfg.Feeds.MISP == nil {
		return nil, nil
	}
	s, err := a.mispService(a.store.MISP())
	if err != nil {
		return nil, err
	}
	if err := s.Sync(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// openFeedState opens the MISP feed state for a change: as the writer when
// no other writer runs (migrating a new store), or beside the writer that
// runs (serve), which sees the change at once.
func (a *app) openFeedState(ctx context.Context) (*sqlite.MISPStore, error) {
	err := a.openWriter(ctx)
	if err == nil {
		return a.store.MISP(), nil
	}
	if !errors.Is(err, lockfile.ErrInUse) {
		return nil, err
	}
	return sqlite.OpenMISPStore(ctx, a.cfg.DataDir)
}

const deviceUsage = `usage:
  vigil device add NAME --groups G1,G2 [--limit N]   add a MISP device; prints its username and key once
  vigil device list                                  list the devices
  vigil device remove NAME                           remove a device added with "device add"`

// cmdDevice adds, lists and removes the MISP devices that pull IOC groups.
func cmdDevice(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usageError(deviceUsage)
	}
	switch args[0] {
	case "add":
		return deviceAdd(ctx, e, args[1:])
	case "list":
		if len(args) > 1 {
			return usageError("unexpected argument %q\n%s", args[1], deviceUsage)
		}
		return deviceList(ctx, e)
	case "remove":
		if len(args) != 2 {
			return usageError("vigil device remove takes one device name (quote a name with spaces)\n%s", deviceUsage)
		}
		return deviceRemove(ctx, e, args[1])
	}
	return usageError("unknown device command %q (allowed: add, list, remove)\n%s", args[0], deviceUsage)
}

func deviceAdd(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("device add", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	groups := fs.String("groups", "", "comma-separated groups the device may pull")
	limit := fs.Int("limit", 0, "the most IOCs a manifest lists (default 50000)")
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return usageError("%v\n%s", err, deviceUsage)
	}
	if name == "" && fs.NArg() > 0 {
		name = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return usageError("unexpected argument %q (quote a name with spaces)\n%s", fs.Arg(0), deviceUsage)
	}
	if name == "" || *groups == "" {
		return usageError("vigil device add needs a NAME and --groups\n%s", deviceUsage)
	}
	if *limit < 0 {
		return usageError("--limit %d is not allowed: it must be positive", *limit)
	}
	var nd mispfeed.NewDevice
	err := changeDevices(ctx, e, func(svc *mispfeed.Service) (err error) {
		nd, err = svc.AddDevice(ctx, name, strings.Split(*groups, ","), *limit)
		return err
	})
	if err != nil {
		return err
	}
	basic := base64.StdEncoding.EncodeToString([]byte(nd.Username + ":" + nd.Key))
	fmt.Fprintf(e.stdout, `added device %q: groups %s, limit %d
username: %s
key:      %s
MISP feed header: Authorization: Basic %s
The key is shown only now; vigil keeps only its hash.
`, nd.Name, strings.Join(nd.Groups, ","), nd.Limit, nd.Username, nd.Key, basic)
	return nil
}

func deviceRemove(ctx context.Context, e *env, name string) error {
	if err := changeDevices(ctx, e, func(svc *mispfeed.Service) error { return svc.RemoveDevice(ctx, name) }); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "removed device %q\n", name)
	return nil
}

// changeDevices calls change with the MISP feed service on the store
// opened for a change (openFeedState). When no writer runs, the configured
// devices are synced first, so that a runtime device cannot take a
// configured one's name.
func changeDevices(ctx context.Context, e *env, change func(*mispfeed.Service) error) error {
	a, err := loadConfigForReading(e)
	if err != nil {
		return err
	}
	if _, err := a.mispService(nil); err != nil {
		return err
	}
	st, err := a.openFeedState(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	defer a.close()
	svc, _ := a.mispService(st)
	if a.store != nil {
		if err := svc.Sync(ctx); err != nil {
			return err
		}
	}
	return change(svc)
}

// deviceStatuses reads the devices and their status from the store.
func deviceStatuses(ctx context.Context, e *env) ([]mispfeed.DeviceStatus, error) {
	a, err := loadConfigForReading(e)
	if err != nil {
		return nil, err
	}
	if _, err := a.mispService(nil); err != nil {
		return nil, err
	}
	if err := a.openReader(ctx); err != nil {
		return nil, err
	}
	defer a.close()
	svc, _ := a.mispService(a.store.MISP())
	return svc.Devices(ctx)
}

func deviceList(ctx context.Context, e *env) error {
	list, err := deviceStatuses(ctx, e)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSOURCE\tUSERNAME\tGROUPS\tLIMIT")
	for _, d := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", d.Name, d.Source, cell(d.Username, 60), strings.Join(d.Groups, ","), d.Limit)
	}
	return tw.Flush()
}

// printDevices is `vigil get devices`: each device's status.
func printDevices(ctx context.Context, e *env, output string) error {
	list, err := deviceStatuses(ctx, e)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(e.stdout)
	defer out.Flush()
	if output == "ndjson" {
		enc := json.NewEncoder(out)
		for _, d := range list {
			if err := enc.Encode(d); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSOURCE\tGROUPS\tSTATUS\tLAST PULL\tWARNING")
	for _, d := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Name, d.Source, strings.Join(d.Groups, ","), d.Status, cell(d.LastPull, 30), cell(d.Warning, 100))
	}
	if len(list) == 0 {
		fmt.Fprintln(e.stderr, "no devices: add feeds.misp.devices to the configuration, or run vigil device add")
	}
	return tw.Flush()
}

func cmdGetDevices(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("get devices", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	output := fs.String("o", "table", "output format: table or ndjson")
	if err := fs.Parse(args); err != nil {
		return usageError("%v\nusage: vigil get devices [-o table|ndjson]", err)
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q\nusage: vigil get devices [-o table|ndjson]", fs.Arg(0))
	}
	if *output != "table" && *output != "ndjson" {
		return usageError("-o %q is not allowed (allowed: table, ndjson)", *output)
	}
	return printDevices(ctx, e, *output)
}
