package main

// Connector packages register their drivers in init, the way database/sql
// drivers do; a blank import here is what makes a type usable in a pipeline.
