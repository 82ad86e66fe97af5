-- A person may also ask for a payment's event to be delivered again
-- (`resend_event`, from the console's timeline): like the other actions, it
-- is on record with the API key's name before it is scheduled.
ALTER TABLE payment_actions DROP CONSTRAINT payment_actions_action_check;
ALTER TABLE payment_actions ADD CONSTRAINT payment_actions_action_check
    CHECK (action IN ('refund', 'refresh', 'resolve_flag', 'resend_event'));
