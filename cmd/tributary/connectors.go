package main

// Connector packages register their drivers in init, the way database/sql
// drivers do; a blank import here is what makes a type usable in a pipeline.
import (
	_ "github.com/tributary-cdc/tributary/connectors/mysql"
	_ "github.com/tributary-cdc/tributary/connectors/postgres"
	_ "github.com/tributary-cdc/tributary/connectors/sqlite"
)
