function sum(values) {
	return values.reduce((total, value) => total + value, 0);
}

function applyTax(amount, rate) {
	return Math.round(amount * (1 + rate) * 100) / 100;
}

module.exports = { sum, applyTax };
