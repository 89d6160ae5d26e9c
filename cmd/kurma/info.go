package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	kurmav1 "github.com/kurmaos/kurma/api/kurma/v1"
)

func (c *cli) infoCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "info",
		Short: "Show the machine: version, capacity and use, the boot timeline",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.api()
			if err != nil {
				return err
			}
			resp, err := api.system.Info(cmd.Context(), connect.NewRequest(&kurmav1.InfoRequest{}))
			if err != nil {
				return err
			}
			if c.json {
				return c.printJSON(resp.Msg)
			}
			i := resp.Msg
			tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
			kind := "kurma daemon on another Linux host"
			if i.KurmaOs {
				kind = "Kurma OS"
			}
			fmt.Fprintf(tw, "Hostname:\t%s\n", i.Hostname)
			fmt.Fprintf(tw, "Version:\t%s (%s)\n", i.Version, kind)
			fmt.Fprintf(tw, "Kernel:\t%s\n", i.Kernel)
			if i.BootedAt != nil {
				fmt.Fprintf(tw, "Booted:\t%s (%s)\n", i.BootedAt.AsTime().Local().Format(time.RFC3339), ago(i.BootedAt.AsTime(), time.Now()))
			}
			fmt.Fprintf(tw, "Pods:\t%d (%d running)\n", i.Pods, i.PodsRunning)
			fmt.Fprintf(tw, "Images:\t%d\n", i.Images)
			if cp := i.Capacity; cp != nil {
				fmt.Fprintf(tw, "CPU:\t%s allocatable of %s, %s requested\n", cores(cp.CpuAllocatable), cores(cp.CpuTotal), cores(cp.CpuRequested))
				fmt.Fprintf(tw, "Memory:\t%s allocatable of %s, %s requested\n", humanSize(cp.MemoryAllocatable), humanSize(cp.MemoryTotal), humanSize(cp.MemoryRequested))
			}
			fmt.Fprintf(tw, "Your role:\t%s\n", i.Role)
			if len(i.Boot) > 0 {
				fmt.Fprintf(tw, "Boot:\t%d ms from kernel start to ready\n", i.BootTotalMs)
				for _, p := range i.Boot {
					status := ""
					if p.Error != "" {
						status = "  FAILED: " + p.Error
					}
					fmt.Fprintf(tw, "  %s\t%d ms%s\n", p.Name, p.Ms, status)
				}
			}
			return tw.Flush()
		},
	}
}

// cores prints millicores as cores.
func cores(milli int64) string {
	if milli%1000 == 0 {
		return fmt.Sprintf("%d cores", milli/1000)
	}
	return fmt.Sprintf("%.2f cores", float64(milli)/1000)
}

func (c *cli) rebootCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "reboot",
		Short: "Reboot the machine (Kurma OS): pods are stopped, disks unmounted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.api()
			if err != nil {
				return err
			}
			_, err = api.system.Reboot(cmd.Context(), connect.NewRequest(&kurmav1.RebootRequest{}))
			return err
		},
	}
}

func (c *cli) poweroffCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "poweroff",
		Short: "Power the machine off (Kurma OS): pods are stopped, disks unmounted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.api()
			if err != nil {
				return err
			}
			_, err = api.system.Poweroff(cmd.Context(), connect.NewRequest(&kurmav1.PoweroffRequest{}))
			return err
		},
	}
}
