package main

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/tributary-cdc/tributary/config"
	"github.com/tributary-cdc/tributary/schema/registry"
	"github.com/tributary-cdc/tributary/worker"
)

// newRegistryCmd serves the registry on its own, backed by any Kafka
// cluster: a Confluent-compatible registry for clusters that have none.
func newRegistryCmd() *cobra.Command {
	var brokers []string
	var listen, topic string
	cmd := &cobra.Command{
		Use:   "registry --brokers HOST:PORT [--listen ADDR] [--topic _schemas]",
		Short: "Serve a Confluent-compatible schema registry persisted in a Kafka topic",
		Long: `Serve tributary's schema registry as a standalone process, persisted in a
compacted Kafka topic in Confluent's record format. Point registry.url of
cluster-mode pipelines at it. Only one registry process may write a topic.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(brokers) == 0 {
				return usageErr(errFlag("--brokers is required"))
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			p := &config.Pipeline{Log: config.Log{Brokers: brokers, Compression: "none", ClientID: "tributary-registry"}}
			p.Registry.URL = "external" // do not start a second one inside StartServices
			svc, err := worker.StartServices(ctx, p, log)
			if err != nil {
				return runtimeErr(err)
			}
			defer svc.Close()
			_, closeReg, err := worker.ServeRegistry(ctx, svc, listen, topic, log)
			if err != nil {
				return runtimeErr(err)
			}
			defer closeReg()
			<-ctx.Done()
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&brokers, "brokers", nil, "Kafka bootstrap brokers")
	cmd.Flags().StringVar(&listen, "listen", registry.DefaultAddr, "host:port to serve the registry API on")
	cmd.Flags().StringVar(&topic, "topic", registry.DefaultTopic, "compacted topic persisting the schemas")
	return cmd
}

type errFlag string

func (e errFlag) Error() string { return string(e) }
