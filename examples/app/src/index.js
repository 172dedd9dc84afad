// The entry point: computes an invoice total and formats it.
const { sum, applyTax } = require('./lib/math');
const { formatMoney } = require('./lib/format');
const items = require('./items');

const subtotal = sum(items.map((item) => item.price * item.quantity));
const total = applyTax(subtotal, 0.2);

module.exports = `${items.length} items, total ${formatMoney(total)}`;
