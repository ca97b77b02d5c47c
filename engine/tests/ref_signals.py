# Independent reference for the strategy tests (plain Python, TA-Lib seeding rules).
closes = [10, 11, 12, 11, 10, 9, 8, 9, 10, 11, 12, 13, 12, 11, 10, 9, 10, 11, 12, 14, 13, 11]
def ema(xs, n, start=None):
    out=[None]*len(xs); k=2/(n+1)
    s = n-1 if start is None else start
    seed = sum(xs[s-n+1:s+1])/n; out[s]=seed
    for i in range(s+1,len(xs)): out[i]=(xs[i]-out[i-1])*k+out[i-1]
    return out
def sign(x): return (x>0)-(x<0)
def crosses(diff):
    sig=[None]*len(diff); prev=None
    for i,d in enumerate(diff):
        if d is None: continue
        s=sign(d)
        if prev is not None:
            if prev<=0 and s>0: sig[i]='enter'
            elif prev>=0 and s<0: sig[i]='exit'
        prev=s
    return sig
def show(name, sig): print(name, [(i,s) for i,s in enumerate(sig) if s])
f,s=ema(closes,2),ema(closes,4)
show('ema_cross(2,4)', crosses([None if a is None or b is None else a-b for a,b in zip(f,s)]))
# RSI(3) Wilder
n=3; rsi=[None]*len(closes); g=l=0
for i in range(1,len(closes)):
    ch=closes[i]-closes[i-1]; gain=max(ch,0); loss=max(-ch,0)
    if i<=n:
        g+=gain; l+=loss
        if i==n: g/=n; l/=n
        else: continue
    else:
        g=(g*(n-1)+gain)/n; l=(l*(n-1)+loss)/n
    rsi[i]=100*g/(g+l) if g+l else 0
sig=[None]*len(closes); prev=None
for i,r in enumerate(rsi):
    if r is None: continue
    if prev is not None:
        if prev<30<=r: sig[i]='enter'
        elif prev>70>=r: sig[i]='exit'
    prev=r
show('rsi(3,30,70)', sig)
# Bollinger(3, 1.0), population sd
import statistics
sig=[None]*len(closes)
for i in range(2,len(closes)):
    w=closes[i-2:i+1]; m=sum(w)/3; sd=statistics.pstdev(w)
    if closes[i]>m+sd: sig[i]='enter'
    elif closes[i]<m: sig[i]='exit'
show('bollinger(3,1)', sig)
# MACD(2,4,2): both EMAs start at index slow-1=3; fast seeded on closes[2..3]
slow=ema(closes,4); fast=ema(closes,2,start=3)
macd=[None if a is None or b is None else a-b for a,b in zip(fast,slow)]
m=[x for x in macd if x is not None]; sg=ema(m,2); off=3
hist=[None]*len(closes)
for j,v in enumerate(sg):
    if v is not None: hist[j+off]=m[j]-v
show('macd(2,4,2)', crosses(hist))
