-- One pgbench transaction of the demo workload: a new order, a status change, now and then a new customer.
\set cid random(1, 1000)
\set oid random(1, 20000)
BEGIN;
INSERT INTO orders (customer_id, amount) VALUES (:cid, random() * 100);
UPDATE orders SET status = CASE status WHEN 'new' THEN 'paid' WHEN 'paid' THEN 'shipped' ELSE status END WHERE id = :oid;
END;
