package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tributary-cdc/tributary/config"
	"github.com/tributary-cdc/tributary/sink"
	"github.com/tributary-cdc/tributary/source"
)

func newValidateCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "validate -f FILE",
		Short: "Check a pipeline config without connecting to anything",
		Long: `Check a pipeline config: YAML syntax, ${VAR} interpolation, unknown keys, and
every connector's own settings. Nothing is contacted. Errors name the file,
line, column and key. Exits 0 when the config is valid, 2 when it is not.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := loadPipeline(file)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s: OK (%d sources, %d sinks)\n", file, len(p.Sources), len(p.Sinks))
			return runtimeErr(err)
		},
	}
	addFileFlag(cmd, &file)
	return cmd
}

// loadPipeline loads a config and decodes every connector through its
// driver, so that everything `run` would reject is rejected before anything
// starts. Errors are usage errors (exit code 2).
func loadPipeline(file string) (*config.Pipeline, error) {
	p, err := config.Load(file)
	if err != nil {
		return nil, usageErr(err)
	}
	return p, usageErr(checkConnectors(p))
}

func checkConnectors(p *config.Pipeline) error {
	if len(p.Sources) == 0 && len(p.Sinks) == 0 {
		return &config.Error{File: p.File, Msg: "no sources and no sinks: nothing to run"}
	}
	var errs []error
	for _, c := range p.Sources {
		d, ok := source.Lookup(c.Type)
		if !ok {
			errs = append(errs, c.Errorf("type", "unknown source type %q (%s)", c.Type, knownTypes(source.Drivers())))
			continue
		}
		if err := c.Decode(d.NewConfig()); err != nil {
			errs = append(errs, err)
		}
	}
	for _, c := range p.Sinks {
		d, ok := sink.Lookup(c.Type)
		if !ok {
			errs = append(errs, c.Errorf("type", "unknown sink type %q (%s)", c.Type, knownTypes(sink.Drivers())))
			continue
		}
		// One entry holds the runtime's keys (topics, batch_size, ...) and
		// the target's own (url, path, ...).
		spec := sink.DefaultSpec()
		if err := c.Decode(&spec, d.NewConfig()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func knownTypes(names []string) string {
	if len(names) == 0 {
		return "none are built in"
	}
	return "known types: " + strings.Join(names, ", ")
}
