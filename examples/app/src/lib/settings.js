module.exports = { currency: '€' };
