-- Budget admission and settlement in one round trip each (issue #3). Same rules as the
-- statement-by-statement path that SQLite uses (src/store/budgets.rs): counters are locked
-- in the order given (callers sort them), a counter admits while spent + reserved < limit,
-- leases of dead instances are dropped only when a counter looks spent, and a request is
-- reserved on every counter or on none.

-- Returns 0 when reserved; i > 0 when counter i is spent; -i when counter i does not exist
-- yet (the caller creates it from the usage records and calls again).
CREATE FUNCTION gatehouse_budget_reserve(
    p_request TEXT, p_counters TEXT[], p_limits BIGINT[], p_amounts BIGINT[],
    p_now BIGINT, p_lease BIGINT
) RETURNS INTEGER LANGUAGE plpgsql AS $$
DECLARE
    n INTEGER := coalesce(array_length(p_counters, 1), 0);
    v_spent BIGINT;
    v_reserved BIGINT;
    v_released BIGINT;
    v_exhausted INTEGER := 0;
BEGIN
    FOR i IN 1..n LOOP
        SELECT spent, reserved INTO v_spent, v_reserved
            FROM budget_counters WHERE counter = p_counters[i] FOR UPDATE;
        IF NOT FOUND THEN
            RETURN -i;
        END IF;
        IF v_spent + v_reserved >= p_limits[i] THEN
            WITH d AS (
                DELETE FROM budget_reservations
                WHERE counter = p_counters[i] AND lease_until < p_now
                RETURNING amount
            )
            SELECT coalesce(sum(amount), 0) INTO v_released FROM d;
            IF v_released <> 0 THEN
                UPDATE budget_counters SET reserved = reserved - v_released WHERE counter = p_counters[i];
                v_reserved := v_reserved - v_released;
            END IF;
            IF v_exhausted = 0 AND v_spent + v_reserved >= p_limits[i] THEN
                v_exhausted := i;
            END IF;
        END IF;
    END LOOP;
    IF v_exhausted > 0 THEN
        RETURN v_exhausted;
    END IF;
    FOR i IN 1..n LOOP
        UPDATE budget_counters SET reserved = reserved + p_amounts[i] WHERE counter = p_counters[i];
        INSERT INTO budget_reservations (request_id, counter, amount, lease_until)
            VALUES (p_request, p_counters[i], p_amounts[i], p_lease);
    END LOOP;
    RETURN 0;
END;
$$;

-- Swaps the request's reservation on each counter for the actual amount; returns each
-- counter's spend after.
CREATE FUNCTION gatehouse_budget_settle(
    p_request TEXT, p_counters TEXT[], p_actual BIGINT[], p_expires BIGINT[]
) RETURNS BIGINT[] LANGUAGE plpgsql AS $$
DECLARE
    n INTEGER := coalesce(array_length(p_counters, 1), 0);
    v_released BIGINT;
    v_spent BIGINT;
    v_out BIGINT[] := '{}';
BEGIN
    FOR i IN 1..n LOOP
        WITH d AS (
            DELETE FROM budget_reservations
            WHERE request_id = p_request AND counter = p_counters[i]
            RETURNING amount
        )
        SELECT coalesce(sum(amount), 0) INTO v_released FROM d;
        INSERT INTO budget_counters (counter, spent, reserved, expires_at)
            VALUES (p_counters[i], p_actual[i], 0, p_expires[i])
            ON CONFLICT (counter) DO UPDATE
            SET spent = budget_counters.spent + p_actual[i],
                reserved = budget_counters.reserved - v_released
            RETURNING spent INTO v_spent;
        v_out := v_out || v_spent;
    END LOOP;
    RETURN v_out;
END;
$$;
