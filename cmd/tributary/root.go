package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tributary-cdc/tributary/config"
)

// Exit codes.
const (
	exitOK      = 0
	exitRuntime = 1 // the pipeline failed while running
	exitUsage   = 2 // bad config, flags or arguments
)

// exitError carries the exit code an error should end the process with.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: exitUsage, err: err}
}

func runtimeErr(err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: exitRuntime, err: err}
}

// execute runs the command line args and returns the process exit code.
// Errors are printed once, to stderr, as "tributary: <error>".
func execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	code := exitUsage // cobra's own errors (unknown command, flag, missing argument) are usage errors
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	for line := range strings.SplitSeq(strings.TrimRight(err.Error(), "\n"), "\n") {
		fmt.Fprintf(stderr, "tributary: %s\n", line)
	}
	var ce *config.Error
	if code == exitUsage && !errors.As(err, &ce) && cmd != nil {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "tributary",
		Short: "Change data capture from databases to a Kafka-protocol log, and local copies rebuilt from it",
		Long: `tributary captures changes from PostgreSQL and MySQL/MariaDB into a Kafka-protocol
log as Debezium-compatible Avro events, and rebuilds disposable local copies
of that data from the log.

By default the log and the schema registry are embedded: one process, no setup.`,
		Version:       versionString(),
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr(err) })
	root.AddCommand(
		newRunCmd(),
		newValidateCmd(),
		newTailCmd(),
		newVersionCmd(),
		newConfigCmd(),
		newRegistryCmd(),
		newReplayCmd(),
		newVerifyCmd(),
		newStatusCmd(),
		newOffsetsCmd(),
		newBackfillCmd(),
		newSnapshotCmd(),
	)
	return root
}

// addFileFlag adds the required -f/--file flag.
func addFileFlag(cmd *cobra.Command, file *string) {
	cmd.Flags().StringVarP(file, "file", "f", "", "pipeline config file (YAML)")
	_ = cmd.MarkFlagRequired("file")
}
