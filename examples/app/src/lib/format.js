const { currency } = require('./settings');

function formatMoney(amount) {
	return `${currency}${amount.toFixed(2)}`;
}

module.exports = { formatMoney };
