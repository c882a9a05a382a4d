// Package errdefs defines the error classes shared by every berth package.
//
// Packages wrap one of these sentinels with context ("container %s: %w") and
// callers classify with errors.Is; only the outermost layer (CLI exit codes,
// API status codes) translates a class into something a user sees.
package errdefs

import "errors"

// Error classes. Wrap them; never compare error strings.
var (
	ErrNotFound           = errors.New("not found")
	ErrAlreadyExists      = errors.New("already exists")
	ErrInvalidArgument    = errors.New("invalid argument")
	ErrFailedPrecondition = errors.New("failed precondition")
	ErrConflict           = errors.New("conflict")
	ErrUnavailable        = errors.New("unavailable")
	ErrNotImplemented     = errors.New("not implemented")
)

// IsNotFound reports whether err is classified as ErrNotFound.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsAlreadyExists reports whether err is classified as ErrAlreadyExists.
func IsAlreadyExists(err error) bool { return errors.Is(err, ErrAlreadyExists) }

// IsInvalidArgument reports whether err is classified as ErrInvalidArgument.
func IsInvalidArgument(err error) bool { return errors.Is(err, ErrInvalidArgument) }

// IsFailedPrecondition reports whether err is classified as ErrFailedPrecondition.
func IsFailedPrecondition(err error) bool { return errors.Is(err, ErrFailedPrecondition) }

// IsConflict reports whether err is classified as ErrConflict.
func IsConflict(err error) bool { return errors.Is(err, ErrConflict) }

// IsNotImplemented reports whether err is classified as ErrNotImplemented.
func IsNotImplemented(err error) bool { return errors.Is(err, ErrNotImplemented) }
