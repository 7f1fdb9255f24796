import { GlobalFonts, createCanvas } from '@napi-rs/canvas';
const base='node_modules/@fontsource/noto-sans/files/';
GlobalFonts.registerFromPath(base+'noto-sans-latin-400-normal.woff', 'pf-lat');
GlobalFonts.registerFromPath(base+'noto-sans-cyrillic-400-normal.woff', 'pf-cyr');
GlobalFonts.registerFromPath(base+'noto-sans-greek-400-normal.woff', 'pf-gr');
const c = createCanvas(288,288); const ctx = c.getContext('2d');
for (const [f,cp] of [['pf-lat',0x4f],['pf-cyr',0x41e],['pf-gr',0x39f],['pf-lat',0x41],['pf-cyr',0x410], ['pf-gr', 0x393], ['pf-cyr', 0x413]] as const) {
  ctx.clearRect(0,0,288,288); ctx.fillStyle='#fff'; ctx.font=`normal 400 96px "${f}"`; ctx.textAlign='center'; ctx.fillText(String.fromCodePoint(cp),144,172);
  const d=ctx.getImageData(0,0,288,288).data; let x0=999,x1=-1,y0=999,y1=-1,s=0; for(let y=0;y<288;y++)for(let x=0;x<288;x++){const a=d[(y*288+x)*4+3]!; if(a){s+=a;x0=Math.min(x0,x);x1=Math.max(x1,x);y0=Math.min(y0,y);y1=Math.max(y1,y);}}
  console.log(f, cp.toString(16), x0,x1,y0,y1,s);
}
