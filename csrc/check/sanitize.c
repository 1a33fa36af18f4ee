/* A C-only workout of every entry point of the native engine, for the sanitizers:
 * tests/test_c_sanitizers.py builds it with -fsanitize=address,undefined (LeakSanitizer runs at
 * exit) and expects "ok". Round trips, tampered and truncated inputs, batches, fixed values. */
#include "vpseal.h"
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
int main(){
 unsigned char key[32]={1},pt[5000],out[5100],back[5000];
 for(int i=0;i<5000;i++) pt[i]=i*7;
 for(int round=0;round<200;round++){
  vp_key*k=vp_key_new(key,32);
  unsigned char iv[12]={round};
  for(size_t n=0;n<300;n+=37){
    if(vp_encrypt(k,iv,12,pt,n%20,pt,n,out,n+16)) return 1;
    if(vp_decrypt(k,iv,12,pt,n%20,out,n+16,back,n)) return 2;
    out[0]^=1; if(n && vp_decrypt(k,iv,12,pt,n%20,out,n+16,back,n)!=VP_BAD_TAG) return 3;
  }
  size_t ptl=57+round; char *body=malloc(vp_body_len(ptl)); char meta[VP_META_LEN];
  if(vp_seal(k,round&1,"agent",5,pt,ptl,body,vp_body_len(ptl),meta)) return 4;
  size_t tl=20; while(meta[96+tl-1]==' ') tl--;
  char hdr[200]; memcpy(hdr,meta+96,tl); memcpy(hdr+tl,meta,96);
  size_t pl=vp_plaintext_len(body,vp_body_len(ptl)); unsigned char *p2=malloc(pl);
  int rc=vp_open(k,round&1,"agent",5,hdr,tl,32,64,body,vp_body_len(ptl),p2,pl);
  if(rc) {printf("open rc %d\n",rc); return 5;}
  body[20]^=1; rc=vp_open(k,round&1,"agent",5,hdr,tl,32,64,body,vp_body_len(ptl),p2,pl); if(rc==0) return 6;
  /* truncated & junk bodies */
  for(size_t cut=0; cut<vp_body_len(ptl); cut+=7) vp_open(k,0,"agent",5,hdr,tl,32,64,body,cut,p2,pl);
  size_t lens[3]={10,20,30}; char *bodies=malloc(vp_body_len(10)+vp_body_len(20)+vp_body_len(30)); char metas[3*VP_META_LEN];
  if(vp_seal_many(k,0,"a",1,3,pt,lens,bodies,vp_body_len(10)+vp_body_len(20)+vp_body_len(30),metas)) return 7;
  /* open_many over the three sealed bodies plus one truncated */
  { char fields[4096]; size_t fl[20]; size_t off=0; const char *bp=bodies;
    for(int i=0;i<4;i++){ size_t bl = i<3 ? vp_body_len(lens[i]) : 30; const char *m = metas + (i<3?i:0)*VP_META_LEN;
      size_t t=20; while(m[96+t-1]==' ') t--;
      memcpy(fields+off,"a",1); fl[5*i]=1; off+=1;
      memcpy(fields+off,m+96,t); fl[5*i+1]=t; off+=t;
      memcpy(fields+off,m,32); fl[5*i+2]=32; off+=32;
      memcpy(fields+off,m+32,64); fl[5*i+3]=64; off+=64;
      memcpy(fields+off,i<3?bp:bodies,bl); fl[5*i+4]=bl; off+=bl; if(i<3) bp+=bl; }
    unsigned char pts[4096]; size_t pls[4]; int sts[4];
    vp_key *ks4[4]={k,k,k,k}; int sc4[4]={0,0,0,0};
    if(vp_open_many(ks4,sc4,4,fields,off,fl,pts,sizeof pts,pls,sts)) return 8;
    if(sts[0]||sts[1]||sts[2]||sts[3]==0) {printf("%d %d %d %d\n",sts[0],sts[1],sts[2],sts[3]); return 9;} }
  { char b2[400]; char m2[VP_META_LEN]; unsigned char ivf[12]={9};
    if(vp_seal_fixed(k,1,"agent",5,"1769746894501",13,"56ffd5ecd8a3a4457863a0bd7c298fb2",32,ivf,12,pt,57,b2,vp_body_len(57),m2)) return 10;
    if(vp_seal_fixed(k,1,"agent",5,"17x",3,NULL,0,NULL,0,pt,57,b2,vp_body_len(57),m2)!=VP_ERR_ARG) return 11;
    char hx[64]; if(vp_sha256_hex(pt,100,hx)) return 12; unsigned char r[2000]; if(vp_random(r,2000)||vp_random(r,7)) return 13; }
  free(bodies); free(p2); free(body);
  vp_key_free(k);
 }
 puts("ok"); return 0;
}
