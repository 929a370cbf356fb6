-- The quickstart's demo service database: a small shop.
DROP TABLE IF EXISTS orders, customers;
CREATE TABLE customers (
	id          bigserial PRIMARY KEY,
	email       text NOT NULL UNIQUE,
	name        text NOT NULL,
	created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE orders (
	id          bigserial PRIMARY KEY,
	customer_id bigint NOT NULL REFERENCES customers(id),
	amount      numeric(10,2) NOT NULL,
	status      text NOT NULL DEFAULT 'new',
	placed_at   timestamptz NOT NULL DEFAULT now()
);
INSERT INTO customers (email, name)
	SELECT 'c' || g || '@example.com', 'Customer ' || g FROM generate_series(1, 1000) g;
INSERT INTO orders (customer_id, amount)
	SELECT 1 + (g % 1000), (g % 500) + 0.99 FROM generate_series(1, 20000) g;
