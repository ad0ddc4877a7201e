// Package pgcheck is the seed tutorial's postgres_test_iam.py in Go: connect to PostgreSQL with a
// 3 s timeout, print `SELECT version()` the way Python prints a one-element tuple, or print why
// the connection failed in the words psycopg2 (libpq) would use. The demo compares these lines
// with the tutorial's expected output, so the wording is part of the contract.
package pgcheck
