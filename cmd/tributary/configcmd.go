package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/tributary-cdc/tributary/config"
	"github.com/tributary-cdc/tributary/sink"
	"github.com/tributary-cdc/tributary/source"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Pipeline config helpers",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "docs",
		Short: "Print the Markdown reference of every config key",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runtimeErr(writeDocs(cmd.OutOrStdout()))
		},
	})
	return cmd
}

// writeDocs prints the pipeline reference and that of every built-in
// connector, all generated from the config structs.
func writeDocs(w io.Writer) error {
	if err := config.Docs(w); err != nil {
		return err
	}
	for _, name := range source.Drivers() {
		d, _ := source.Lookup(name)
		if _, err := fmt.Fprintln(w); err != nil {
			return err
		}
		if err := config.DocsFor(fmt.Sprintf("Source `%s`", name), d.NewConfig(), w); err != nil {
			return err
		}
	}
	if len(sink.Drivers()) == 0 {
		return nil
	}
	if _, err := fmt.Fprintln(w); err != nil {
		return err
	}
	spec := sink.DefaultSpec()
	if err := config.DocsFor("Keys of every sink", &spec, w); err != nil {
		return err
	}
	for _, name := range sink.Drivers() {
		d, _ := sink.Lookup(name)
		if _, err := fmt.Fprintln(w); err != nil {
			return err
		}
		if err := config.DocsFor(fmt.Sprintf("Sink `%s`", name), d.NewConfig(), w); err != nil {
			return err
		}
	}
	return nil
}
