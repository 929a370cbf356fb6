package registry

import (
	"fmt"
	"net/http"
)

// Error is a registry error in Confluent's shape: an HTTP status plus the
// Confluent error_code and message that clients match on.
type Error struct {
	Status  int    `json:"-"`
	Code    int    `json:"error_code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return fmt.Sprintf("schema registry error %d: %s", e.Code, e.Message) }

// Confluent error codes (io.confluent.kafka.schemaregistry.rest.exceptions.Errors).
const (
	CodeSubjectNotFound          = 40401
	CodeVersionNotFound          = 40402
	CodeSchemaNotFound           = 40403
	CodeSubjectSoftDeleted       = 40404
	CodeSubjectNotSoftDeleted    = 40405
	CodeVersionSoftDeleted       = 40406
	CodeVersionNotSoftDeleted    = 40407
	CodeSubjectConfigNotFound    = 40408
	CodeIncompatibleSchema       = 409
	CodeInvalidSchema            = 42201
	CodeInvalidVersion           = 42202
	CodeInvalidCompatibility     = 42203
	CodeOperationNotPermitted    = 42205
	CodeInvalidSubject           = 42208
	CodeSchemaTooLarge           = 42209
	CodeStoreError               = 50001
	CodeOperationTimeout         = 50002
	CodeUnsupportedMediaType     = 415
	CodeBadRequest               = 400
	CodeRouteNotFound            = 404
	CodeMethodNotAllowed         = 405
	CodeUnprocessableRequestBody = 422
)

func errSubjectNotFound(subject string) *Error {
	return &Error{http.StatusNotFound, CodeSubjectNotFound, fmt.Sprintf("Subject '%s' not found.", subject)}
}

func errVersionNotFound(subject string, version int) *Error {
	return &Error{http.StatusNotFound, CodeVersionNotFound, fmt.Sprintf("Version %d not found for subject '%s'.", version, subject)}
}

func errSchemaIDNotFound(id int) *Error {
	return &Error{http.StatusNotFound, CodeSchemaNotFound, fmt.Sprintf("Schema %d not found", id)}
}

func errSchemaNotFound(subject string) *Error {
	return &Error{http.StatusNotFound, CodeSchemaNotFound, fmt.Sprintf("Schema not found under subject '%s'.", subject)}
}

func errInvalidSchema(format string, args ...any) *Error {
	return &Error{http.StatusUnprocessableEntity, CodeInvalidSchema, fmt.Sprintf(format, args...)}
}

func errInvalidVersion(v string) *Error {
	return &Error{http.StatusUnprocessableEntity, CodeInvalidVersion,
		fmt.Sprintf("The specified version '%s' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"", v)}
}

func errInvalidCompatibility(level string) *Error {
	return &Error{http.StatusUnprocessableEntity, CodeInvalidCompatibility,
		fmt.Sprintf("Invalid compatibility level %q. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive", level)}
}

func errStore(op string, err error) *Error {
	return &Error{http.StatusInternalServerError, CodeStoreError, fmt.Sprintf("Error in the backend data store while trying to %s: %v", op, err)}
}
