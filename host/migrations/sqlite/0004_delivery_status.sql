-- The publisher's status of an envelope's last attempt, in neutral words: the
-- column held Dapr's HTTP status only because Dapr was the only publisher.
ALTER TABLE envelopes RENAME COLUMN dapr_status TO delivery_status;
