// Apache ECharts, only the parts the pages use, as its own script (echarts.js): the browser loads
// and compiles it off the main thread (async) while app.js already asks the API for the page's
// data. It was two thirds of one bundle, and evaluating it first delayed every request.
import * as echarts from 'echarts/core';
import { BarChart, FunnelChart, HeatmapChart, LineChart } from 'echarts/charts';
import { GridComponent, LegendComponent, TooltipComponent, VisualMapComponent, DataZoomComponent } from 'echarts/components';
import { CanvasRenderer } from 'echarts/renderers';

echarts.use([BarChart, FunnelChart, HeatmapChart, LineChart, GridComponent, LegendComponent, TooltipComponent,
  VisualMapComponent, DataZoomComponent, CanvasRenderer]);
window.PersonaECharts = echarts;
window.dispatchEvent(new Event('persona-echarts'));
