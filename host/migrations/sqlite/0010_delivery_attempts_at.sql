-- The console's health read: the last failed publish attempt of any envelope.
CREATE INDEX delivery_attempts_at ON delivery_attempts (at);
