// Package registry is tributary's embedded, Confluent-compatible schema
// registry.
//
// It serves the subset of the Confluent Schema Registry REST API that Kafka
// serializers, kcat and franz-go's sr client use (subjects, versions, ids,
// compatibility checks, config), for AVRO schemas only, and keeps its state in
// a compacted Kafka topic (default "_schemas") in Confluent's own record format:
//
//	key   {"keytype":"SCHEMA","subject":"s","version":1,"magic":1}
//	value {"subject":"s","version":1,"id":7,"schema":"...","deleted":false}
//	key   {"keytype":"CONFIG","subject":null,"magic":0}   (null: global)
//	value {"compatibilityLevel":"BACKWARD"}
//	key   {"keytype":"DELETE_SUBJECT","subject":"s","magic":0}
//	value {"subject":"s","version":3}
//
// A null value on a SCHEMA key is a permanent delete, on a CONFIG key a reset.
// NOOP, MODE and other key types that Confluent writes are read and ignored,
// so a topic written by Confluent Schema Registry can be adopted (and the
// other way round).
//
// # Durability
//
// Every write is produced with acks=all and acknowledged by the log before the
// HTTP response is sent, so an id handed to a client survives a crash. On
// start the registry reads the topic up to its high watermark and rebuilds its
// state, so ids, versions and configs survive restarts.
//
// # Single writer
//
// Like Confluent's leader, exactly one Registry may write to a topic at a
// time: ids are allocated from the state this process has read, so two
// concurrent writers could hand out the same id for different schemas. In
// embedded mode tributary guarantees it through the lock on its data
// directory. Before each write the registry still catches up with anything
// appended since its last read, which makes sequential hand-overs (a restart,
// a second process after the first stopped) safe.
//
// Schemas are compared for identity on hamba/avro's full JSON form (which
// keeps defaults, docs and custom properties such as connect.name), so
// re-registering the same schema with different whitespace returns the
// existing id; the same schema under another subject reuses its id, as
// Confluent does.
package registry
