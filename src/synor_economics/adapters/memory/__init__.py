"""In-memory fakes of every port: fast unit tests and dry runs. Never the only test."""
