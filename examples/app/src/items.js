module.exports = [
	{ name: 'notebook', price: 4.5, quantity: 3 },
	{ name: 'pencil', price: 0.8, quantity: 10 },
	{ name: 'eraser', price: 1.25, quantity: 2 },
];
