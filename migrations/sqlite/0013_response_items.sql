-- The items of stored responses, by id (issue 7): what an `item_reference` input item names.
-- One row per input or output item of a stored response that has an `id`, kept as JSON; an
-- item a later turn sends again has a row for that response too, so deleting the first
-- response leaves it findable. `owner` is the key that made the response, as in `responses`,
-- but '' on a gateway without keys so that it can be part of the key: a reference resolves
-- only for the key that made it.
CREATE TABLE response_items (
    owner TEXT NOT NULL,
    id TEXT NOT NULL,
    response_id TEXT NOT NULL,
    item TEXT NOT NULL,
    PRIMARY KEY (owner, id, response_id)
);
CREATE INDEX response_items_response ON response_items (response_id);
