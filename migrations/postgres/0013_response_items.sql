-- The items of stored responses, by id (issue 7): what an `item_reference` input item names.
-- One row per input or output item of a stored response that has an `id`, kept as JSON.
-- `owner` is the key that made the response, as in `responses`, but '' on a gateway without
-- keys so that (owner, id) can be the key: a reference resolves only for the key that made it.
CREATE TABLE response_items (
    owner TEXT NOT NULL,
    id TEXT NOT NULL,
    response_id TEXT NOT NULL,
    item TEXT NOT NULL,
    PRIMARY KEY (owner, id)
);
CREATE INDEX response_items_response ON response_items (response_id);
