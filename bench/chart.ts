// A small SVG line chart for the scaling scenario: one panel per series, wall time as a
// line, peak RSS written under each point. No dependency: the chart is a few elements.
export interface Series {
	label: string;
	unit: string;
	points: Array<{ x: number; xLabel: string; y: number; rss: number }>;
}

const panelWidth = 360;
const panelHeight = 220;
const margin = { top: 40, right: 20, bottom: 50, left: 50 };

function escape(text: string): string {
	return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

function renderPanel(series: Series, offsetX: number): string {
	const width = panelWidth - margin.left - margin.right;
	const height = panelHeight - margin.top - margin.bottom;
	const maxY = Math.max(...series.points.map((point) => point.y)) * 1.15 || 1;
	const step = series.points.length > 1 ? width / (series.points.length - 1) : 0;
	const toX = (index: number) => offsetX + margin.left + index * step;
	const toY = (value: number) => margin.top + height - (value / maxY) * height;
	const line = series.points.map((point, index) => `${toX(index).toFixed(1)},${toY(point.y).toFixed(1)}`).join(' ');
	const ticks = [0, 0.5, 1].map((fraction) => {
		const value = maxY * fraction;
		return `<line x1="${offsetX + margin.left}" x2="${offsetX + margin.left + width}" y1="${toY(value)}" y2="${toY(value)}" stroke="#ddd"/>`
			+ `<text x="${offsetX + margin.left - 6}" y="${toY(value) + 4}" text-anchor="end">${value.toFixed(1)} ${series.unit}</text>`;
	}).join('');
	const points = series.points.map((point, index) => `<circle cx="${toX(index)}" cy="${toY(point.y)}" r="4" fill="#2a6fdb"/>`
		+ `<text x="${toX(index)}" y="${toY(point.y) - 10}" text-anchor="middle">${point.y.toFixed(2)} ${series.unit}</text>`
		+ `<text x="${toX(index)}" y="${margin.top + height + 18}" text-anchor="middle">${escape(point.xLabel)}</text>`
		+ `<text x="${toX(index)}" y="${margin.top + height + 34}" text-anchor="middle" fill="#777">${Math.round(point.rss)} MB RSS</text>`).join('');
	return `<text x="${offsetX + panelWidth / 2}" y="20" text-anchor="middle" font-weight="bold">${escape(series.label)}</text>${ticks}`
		+ `<polyline points="${line}" fill="none" stroke="#2a6fdb" stroke-width="2"/>${points}`;
}

export function renderScalingChart(series: Series[]): string {
	const width = panelWidth * series.length;
	const panels = series.map((entry, index) => renderPanel(entry, index * panelWidth)).join('');
	return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${panelHeight}" viewBox="0 0 ${width} ${panelHeight}" font-family="sans-serif" font-size="11"><rect width="100%" height="100%" fill="white"/>${panels}</svg>\n`;
}
