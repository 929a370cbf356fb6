// Command tributary runs change-data-capture pipelines: sources capture
// database changes into a Kafka-protocol log, sinks rebuild local copies.
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(execute(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
